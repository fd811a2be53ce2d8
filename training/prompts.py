"""The prompts the draft head is trained on, and the held-out prompts it is evaluated on.

Written for this project (no corpus needed): topics x styles, half as plain text to continue and half as chat
requests in SmolLM2-Instruct's template. The held-out topics and styles appear nowhere in the training grid, and
neither do the benchmark's prompts (bench/prompts.py), so held-out acceptance measures generalisation.
"""

from __future__ import annotations

import random

TOPICS = [
    "the history of the printing press", "how volcanoes form", "the water cycle", "training a puppy",
    "baking sourdough bread", "the French Revolution", "black holes", "saving money on groceries",
    "learning a second language", "the human immune system", "electric cars", "the Roman Empire",
    "photosynthesis", "starting a vegetable garden", "the invention of the telephone", "climate change",
    "how the internet works", "the life of honeybees", "running a marathon", "ancient Egypt",
    "machine learning", "the stock market", "coral reefs", "writing a good resume", "the solar system",
    "the Industrial Revolution", "sleep and health", "how airplanes fly", "the history of jazz",
    "recycling plastic", "the Great Wall of China", "meditation", "the theory of evolution", "earthquakes",
    "making pasta from scratch", "the Renaissance", "renewable energy", "the human brain", "chess strategy",
    "the Moon landing", "time management", "rainforests", "the history of the bicycle", "vaccines",
    "public speaking", "the Vikings", "quantum computing", "caring for houseplants", "the Olympic Games",
    "the history of money", "deserts", "how batteries work", "friendship", "the ocean tides",
    "writing poetry", "the Silk Road", "artificial satellites", "healthy breakfast ideas", "the printing of books",
    "dinosaurs", "cloud computing", "the history of medicine", "mountain climbing", "the American Civil War",
    "how vaccines are tested", "urban planning", "the life of Leonardo da Vinci", "bird migration",
    "cybersecurity", "the invention of paper", "wind power", "the history of chocolate", "online privacy",
    "the Arctic", "learning to play the guitar", "the history of the Olympics", "how rainbows form",
    "teamwork at work", "the Aztec civilization", "electric circuits", "composting", "the history of cinema",
    "volunteering", "penguins", "the printing of newspapers", "3D printing", "the Cold War", "nutrition",
    "how bridges are built", "the history of mathematics", "wolves", "smartphones", "the Mayan calendar",
    "city parks", "how clouds form", "robotics", "the history of tea", "museums", "glaciers",
    "the history of writing", "open source software", "elephants", "the causes of inflation",
]

PLAIN_STYLES = [
    "{Topic} is a subject that",
    "Here is a short introduction to {topic}.",
    "The most important thing to know about {topic} is",
    "Chapter 1: {Topic}\n\n",
    "Many people are surprised to learn that {topic}",
    "In this article, we will explain {topic} in simple terms.",
    "A brief history of {topic}:",
    "Five facts about {topic}:\n1.",
    "When I first started reading about {topic},",
    "Q: What is interesting about {topic}?\nA:",
]

CHAT_STYLES = [
    "Explain {topic} to a ten-year-old.",
    "Write a short paragraph about {topic}.",
    "What are the main ideas behind {topic}?",
    "Give me three tips related to {topic}.",
    "Write a short story that involves {topic}.",
    "Summarize what experts say about {topic}.",
    "Why does {topic} matter today?",
    "List some common misconceptions about {topic}.",
    "Describe {topic} in a few sentences.",
    "Write an email to a friend about {topic}.",
]

# Held out: topics and styles that the training grid never uses.
HELD_OUT_TOPICS = [
    "the history of the piano", "how lightning forms", "the life of octopuses", "knitting a scarf",
    "the Byzantine Empire", "solar panels on houses", "the history of the postal service", "sea turtles",
    "learning to swim", "the invention of the steam engine", "how coffee is grown", "the rings of Saturn",
]
HELD_OUT_PLAIN = ["Once upon a time, in a village known for {topic},", "Everything you need to know about {topic}:"]
HELD_OUT_CHAT = ["Tell me something surprising about {topic}.", "Write a haiku and then a short note about {topic}."]

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chat(user: str) -> str:
    """SmolLM2-Instruct's chat template, as its tokenizer_config applies it (with the default system turn)."""
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            f"<|im_start|>assistant\n")


def for_engine(prompt: str) -> tuple[str, bool]:
    """(text, chat) for the engine, whose prompts are plain text (`<|im_start|>` typed into one is text): a chat()
    prompt becomes its user text with chat=True, which the engine wraps in the same template (same token ids)."""
    before, after = chat("\0").split("\0")
    if prompt.startswith(before) and prompt.endswith(after):
        return prompt[len(before): len(prompt) - len(after)], True
    return prompt, False


def _fill(style: str, topic: str) -> str:
    return style.format(topic=topic, Topic=topic[:1].upper() + topic[1:])


def _grid(topics: list[str], plain_styles: list[str], chat_styles: list[str]) -> list[str]:
    """Every topic in every plain style, then every topic in every chat style (wrapped in the chat template)."""
    return ([_fill(s, t) for t in topics for s in plain_styles]
            + [chat(_fill(s, t)) for t in topics for s in chat_styles])


def training_prompts(seed: int = 0) -> list[str]:
    """Every topic x style of the training grid, shuffled with `seed`."""
    prompts = _grid(TOPICS, PLAIN_STYLES, CHAT_STYLES)
    random.Random(seed).shuffle(prompts)
    return prompts


def held_out_prompts() -> list[str]:
    return _grid(HELD_OUT_TOPICS, HELD_OUT_PLAIN, HELD_OUT_CHAT)

# A second grid (added after the first head memorised the first one): new topics, new styles, 8 per topic.
TOPICS_B = [
    "the history of the violin", "how glass is made", "the migration of salmon", "building a birdhouse",
    "the Ottoman Empire", "the chemistry of cooking", "the history of skateboarding", "how submarines work",
    "the life of ants", "the history of maps", "growing tomatoes", "the Hubble telescope", "the history of soap",
    "desert plants", "how elevators work", "the history of circuses", "the psychology of habits", "canals",
    "the invention of the radio", "how cheese is made", "the Inca Empire", "hot air balloons", "jellyfish",
    "the history of comic books", "how recycling plants work", "the life of Marie Curie", "volcanic islands",
    "the history of the calendar", "board games", "how noise-cancelling headphones work", "the Amazon river",
    "the history of pizza", "tornadoes", "the life of Charles Darwin", "how vaccines train the body",
    "the history of trains", "dolphins", "the economics of housing", "how the heart pumps blood", "origami",
    "the history of fireworks", "spiders", "how solar eclipses happen", "the invention of the light bulb",
    "the history of the bicycle helmet", "rice farming", "the life of Ada Lovelace", "how maps are made today",
    "the Great Barrier Reef", "the history of perfume", "owls", "how a refrigerator works", "the Black Death",
    "learning to draw", "the history of sugar", "how tides affect fishing", "the life of Nikola Tesla",
    "the history of the zipper", "mushrooms", "how wifi works", "the history of ballet", "kangaroos",
    "how paper money is printed", "the first computers", "camping in the forest", "the history of coffee houses",
    "how dams generate power", "the life of Frida Kahlo", "tigers", "the history of cartoons",
    "how search engines rank pages", "the history of knitting", "earthworms", "how rockets reach orbit",
    "the history of the toothbrush", "the Sahara desert", "the life of Mozart", "how bees make honey",
    "the history of video games", "how a car engine works", "the history of libraries", "frogs",
    "saving energy at home", "the history of tattoos", "how languages change over time", "the life of Gandhi",
    "hummingbirds", "the history of the umbrella", "how thermometers work", "the history of photography",
    "the deep sea", "the life of Galileo", "how coins are minted", "the history of democracy", "polar bears",
    "how spam filters work", "the history of the telescope", "baking cookies", "the history of surfing",
    "how wind turbines are built", "the life of Shakespeare", "sharks", "the history of the alphabet",
    "how traffic lights are timed", "the history of tea ceremonies", "mangrove forests", "the life of Einstein",
    "how glasses correct vision", "the history of the sandwich", "the immune response to a cold", "bats",
    "how a piano makes sound", "the history of road building", "the life of Cleopatra", "how snowflakes form",
    "the history of basketball", "crows", "how email travels across the world", "the history of clocks",
    "the Himalayas", "the life of Beethoven", "how bread rises", "the history of chess", "octopus camouflage",
    "how the postal code system works", "the history of the printing of maps", "the Nile river", "giraffes",
    "how a compass works", "the history of ice cream", "the life of Isaac Newton", "how lakes freeze",
    "the history of windmills", "the economics of coffee", "how fingerprints are unique", "the Aurora Borealis",
    "the history of the stethoscope", "koalas", "how a bill becomes law", "the history of swimming pools",
]
PLAIN_STYLES_B = [
    "Have you ever wondered about {topic}? Here is what you should know.", "Notes on {topic}:\n-",
    "My grandfather used to tell me stories about {topic}.", "The strange truth about {topic} is that",
    "Lesson plan: {Topic}\nObjective:", "It all started with {topic}.",
]
CHAT_STYLES_B = [
    "Can you teach me the basics of {topic}?", "What would a beginner get wrong about {topic}?",
    "Write a blog post introduction about {topic}.", "Compare two different views on {topic}.",
    "Give a step-by-step explanation of {topic}.", "Write a dialogue between two friends discussing {topic}.",
]


def training_prompts_b(seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    prompts = []
    for topic in TOPICS_B:
        plain = rng.sample(PLAIN_STYLES + PLAIN_STYLES_B, 4)
        chats = rng.sample(CHAT_STYLES + CHAT_STYLES_B, 4)
        prompts += [_fill(s, topic) for s in plain] + [chat(_fill(s, topic)) for s in chats]
    rng.shuffle(prompts)
    return prompts


# Part d: openers with no topic, sampled at temperature 1.0, so the model writes about whatever it likes. The grids
# above fix 243 + 120 topics; the head memorised them (pos-1 acceptance 0.65 on training prompts, 0.40 on held-out
# ones), so the missing thing is contexts from the model's own open-ended distribution, not more of the same grid.
FREE_PLAIN = [
    "The", "In", "When", "I", "It was", "There are", "One of the", "Many people", "If you", "According to",
    "Yesterday", "Today", "This", "Why", "How to", "My", "We", "After the", "Before", "Although",
    "Once", "Here is", "A new", "For years,", "Most", "Every morning", "Scientists", "The best way to", "Last week,",
    "She", "He", "They", "Our", "What if", "Imagine", "Some", "At the", "As a", "Dear", "Chapter 1",
]
FREE_CHAT = [
    "Tell me a story.", "Write a short poem.", "Explain something interesting.", "Give me some advice.",
    "What should I know today?", "Teach me something new.", "Write a paragraph about anything you like.",
    "Describe a place.", "Tell me a fun fact.", "Write a letter to a friend.", "What is your favourite topic?",
    "Help me plan my day.", "Write the opening of a novel.", "Explain a scientific idea simply.",
    "Give me three tips.", "Describe a person.", "Write a dialogue.", "What happened in history?",
    "Write a product description.", "Summarize an idea you find important.",
]


def free_prompts(count: int = 2048) -> list[str]:
    """`count` prompts cycling through the openers (plain and chat alternating); sampling makes each text differ."""
    pool = [p for pair in zip(FREE_PLAIN, FREE_CHAT + FREE_CHAT) for p in (pair[0], chat(pair[1]))]
    return [pool[i % len(pool)] for i in range(count)]


# Part f: other genres. A fifth draw of part d's openers bought nothing (held-out 1.76 vs 1.78 tokens per call), so
# this part changes what is written, not how often: dialogue, lists, instructions, letters, news, reviews, Q&A,
# recipes, poems, code comments, forum posts, and chat requests for the same. Sampled at temperature 0.8 (part c's),
# nearer the greedy text the head drafts against than part d's 1.0.
GENRE_PLAIN = [
    '"Where are you going?" she asked.', '"I can\'t believe it," he said.', "Ingredients:\n-", "Top 10 reasons",
    "Step 1:", "Q: ", "Question: What", "Subject: ", "Dear Sir or Madam,", "BREAKING NEWS:", "Review:",
    "Product description:", "# This function", "// TODO:", "Dear diary,", "Long ago,", "Abstract:",
    "Chapter 12", "Title:", "Instructions:", "FAQ\n\nQ:", "Posted by", "Meeting notes:", "Summary:", "Warning:",
    "Recipe:", "Hi everyone,", "Introduction\n\n", "Conclusion\n\n", "Tip:", "Example:", "Note:", "Lesson 3:",
    "Interviewer:", "The following", "In conclusion,", "First,", "Thank you for", "Welcome to", "Roses are red,",
]
GENRE_CHAT = [
    "Tell me a bedtime story.", "Write a poem about nature.", "Write an email to a colleague.", "Give me a recipe.",
    "List five ideas for a weekend.", "Write a review of a book you like.", "Answer a question about science.",
    "Write a short speech.", "Explain how something works, step by step.", "Write a news report.",
    "Write a conversation between two people.", "Give me a list of tips for students.", "Write a fairy tale.",
    "Write a funny story.", "Describe an animal.", "Write a diary entry.", "Write instructions for a simple task.",
    "What is a good habit to start?", "Explain a word and use it in a sentence.", "Write a thank-you note.",
    "Tell me about a famous person.", "Write a short mystery.", "Write a motivational message.",
    "Explain the difference between two things.", "Write a short essay.", "Give me a fun quiz with answers.",
    "Write a job advertisement.", "Describe a meal.", "Write a song.", "Give me an example of a metaphor.",
    "Write a short biography of an invented person.", "Write the rules of a simple game.", "Describe a city.",
    "Write a text message inviting a friend.", "What are the pros and cons of something?",
    "Write a children's story.", "Summarize a story you know.", "Write a complaint letter.",
    "Explain a math idea simply.", "Write a short scene from a play.",
]


def genre_prompts(count: int = 2048) -> list[str]:
    """`count` prompts cycling through the genre openers (plain and chat alternating)."""
    pool = [p for pair in zip(GENRE_PLAIN, GENRE_CHAT) for p in (pair[0], chat(pair[1]))]
    return [pool[i % len(pool)] for i in range(count)]


# Grounded requests for prompt lookup's card (training/lookup_card.py): the answer repeats much of the request, as
# in a code edit or a restated passage. None is a bench prompt (bench/prompts.py) or shares its texts.
GROUNDED_TEXTS = [
    "Honeybees live in colonies of up to sixty thousand workers. Each worker visits hundreds of flowers a day, and "
    "the nectar it brings back is fanned by other bees until most of its water has gone and it has become honey.",
    "The first public railway opened in 1825. Its engines pulled coal wagons at the speed of a walking horse, and "
    "within twenty years railways joined most of the large towns of the country.",
    "A kite flies because the wind pushes against its face while the string holds it back. Its tail keeps it "
    "pointed into the wind, and a light kite rises in a breeze that would not lift a heavy one.",
    "Glaciers form where more snow falls in winter than melts in summer. Year after year the snow is pressed into "
    "ice, and when the ice is thick enough it begins to flow downhill under its own weight.",
]
GROUNDED_CODE = [
    "def average(values):\n    total = 0\n    for value in values:\n        total += value\n    return total / len(values)\n",
    "def greet(name, greeting):\n    message = greeting + ', ' + name + '!'\n    print(message)\n    return message\n",
    "class Counter:\n    def __init__(self):\n        self.count = 0\n\n    def add(self, amount):\n"
    "        self.count += amount\n        return self.count\n",
]
GROUNDED_TEXT_TASKS = [
    "Repeat this passage word for word: {text}", "Copy this text exactly, then say how many sentences it has: {text}",
    "Here is a paragraph:\n{text}\nWrite it out again, keeping every word.",
]
GROUNDED_CODE_TASKS = [
    "Add a docstring to this function and show the whole code:\n{text}",
    "Rename the variables in this code to longer names and show the whole code:\n{text}",
    "Add type hints to this code and show the whole code:\n{text}",
]


def grounded_prompts() -> list[str]:
    """Every grounded text in every task, as chat requests (the engine's chat=True)."""
    return ([chat(task.format(text=text)) for text in GROUNDED_TEXTS for task in GROUNDED_TEXT_TASKS]
            + [chat(task.format(text=code)) for code in GROUNDED_CODE for task in GROUNDED_CODE_TASKS])
