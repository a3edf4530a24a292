"""The one place that owns the prompt template (identical in training and generation)."""

from __future__ import annotations

ALPACA = (
    "Below is an instruction that describes a task. Write a response that appropriately completes "
    "the request.\n\n### Instruction:\n{instruction}\n{input}\n\n### Response: "
)
RESPONSE_MARK = "### Response:"
TEMPLATES = ("alpaca", "chat")


def build_prompt(example: dict, template: str = "alpaca", tokenizer=None) -> str:
    """Render the prompt for ``{instruction, input}``; the response text follows it directly."""
    if template == "alpaca":
        return ALPACA.format(instruction=example["instruction"], input=example.get("input", ""))
    if template == "chat":
        if tokenizer is None or tokenizer.chat_template is None:
            raise ValueError("template 'chat' needs a tokenizer with a chat_template")
        user = example["instruction"] + ("\n" + example["input"] if example.get("input") else "")
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
        )
    raise ValueError(f"unknown template {template!r}; expected one of {TEMPLATES}")


def extract_response(text: str) -> str:
    """Answer = text after the last '### Response:' (the whole text when the mark is absent)."""
    return text.rsplit(RESPONSE_MARK, 1)[-1].strip()
