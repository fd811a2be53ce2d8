"""The bench's prompts, shared by bench/run.py, bench/trees.py and bench/auto.py."""

CODE = (
    "def compute_total_price(items, tax_rate):\n"
    "    subtotal = sum(item.price * item.quantity for item in items)\n"
    "    tax = subtotal * tax_rate\n"
    "    return subtotal + tax\n"
)
PASSAGE = (
    "The Amazon rainforest covers much of the Amazon basin of South America. The basin covers seven million square "
    "kilometres, of which five and a half million square kilometres are covered by the rainforest."
)

LONG_PASSAGE = (
    "Salt marshes grow where the sea meets the land, in sheltered bays and estuaries. Twice a day the tide floods "
    "them and drains away again, leaving mud that is rich in food. Grasses that can live in salty water hold the mud "
    "in place with their roots, and each flood leaves a thin new layer behind. Crabs, snails and small fish shelter "
    "among the stems, and many birds stop there to feed on their long journeys north and south."
)


# The open-ended prompts are in neither the draft head's training grid nor its held-out set (training/prompts.py).
PROMPTS = {
    "open-ended": "In a distant future,",
    "open-ended (story)": "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "open-ended (essay)": "The main reason people enjoy hiking in the mountains is",
    "code edit (grounded)": f"Rename the function compute_total_price to total_with_tax in this code and show the whole code:\n{CODE}",
    "restate (grounded)": f"Repeat this passage word for word: {PASSAGE}",
}
# Requests the model answers: sent through SmolLM2-Instruct's chat template (--chat; prompts are plain text otherwise).
CHAT = {"open-ended (story)", "code edit (grounded)", "restate (grounded)", "restate, long (grounded)"}
# bench/auto.py only: "restate" ends after 25 tokens in 7 steps (one step is 14% of a run), too short to show a block
# that grows while lookup keeps hitting; this one fills the 64 tokens (the model skips one sentence).
AUTO_EXTRA = {"restate, long (grounded)": f"Repeat this passage word for word: {LONG_PASSAGE}"}
