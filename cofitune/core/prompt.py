"""The one place that owns the prompt template (identical in training and generation)."""

from __future__ import annotations

ALPACA = (
    "Below is an instruction that describes a task. Write a response that appropriately completes "
    "the request.\n\n### Instruction:\n{instruction}\n{input}\n\n### Response: "
)
RESPONSE_MARK = "### Response:"
TEMPLATES = ("alpaca", "chat")
#: the config value that takes the model sheet's word (``chat: true`` -> chat, else alpaca)
AUTO = "auto"
#: how a chat-formatted prompt gets its system turn, in training, speciality generation and lm-eval alike
SYSTEM_PROMPT_POLICY = ("no system message is passed: the chat template's own default system turn applies "
                        "(lm-eval puts a task's description, e.g. MMLU's subject line, as the system message)")


def resolve_template(template: str, chat_model: bool) -> str:
    """The concrete prompt format of a row: ``template`` itself, or with ``auto`` the model's own format (its
    tokenizer's chat template for a chat model, Alpaca otherwise, as the release trains its Alpaca-aligned models).

    Raises:
        ValueError: an unknown format.
    """
    if template == AUTO:
        return "chat" if chat_model else "alpaca"
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; expected {AUTO} or one of {TEMPLATES}")
    return template


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
