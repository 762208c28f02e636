"""Compatibility check with the official `openai` Python SDK against a running proxy.

Usage: python openai_compat.py BASE_URL API_KEY
Exits non-zero (with the failing assertion) if anything the SDK sees is off.
"""
import sys

from openai import OpenAI

base, key = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=base, api_key=key, max_retries=0, timeout=30)

models = [m.id for m in client.models.list()]
assert models, "models list is empty"
model = models[0]
assert client.models.retrieve(model).id == model

done = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Say hello"}])
assert done.object == "chat.completion", done
text = done.choices[0].message.content
assert text and "Say hello" in text, text
assert done.choices[0].finish_reason == "stop"
assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens > 0

parts, reasoning, finish, usage = [], [], None, None
stream = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "Stream please"}],
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            parts.append(choice.delta.content)
        extra = getattr(choice.delta, "model_extra", None) or {}
        if extra.get("reasoning_content"):
            reasoning.append(extra["reasoning_content"])
        if choice.finish_reason:
            finish = choice.finish_reason
streamed = "".join(parts)
assert "Stream please" in streamed, streamed
assert finish == "stop", finish
assert usage is not None and usage.completion_tokens > 0, usage
assert "<think>" not in streamed
print(f"openai-python OK: {len(models)} models, non-stream {len(text)} chars, stream {len(streamed)} chars, reasoning {len(''.join(reasoning))} chars")

# A follow-up turn continues the conversation.
follow = client.chat.completions.create(
    model=model,
    messages=[
        {"role": "user", "content": "Say hello"},
        {"role": "assistant", "content": text},
        {"role": "user", "content": "And again"},
    ],
)
assert "Turn 2" in follow.choices[0].message.content, follow.choices[0].message.content

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("unknown model accepted")
except Exception as e:  # the SDK raises NotFoundError
    assert getattr(e, "status_code", None) == 404, e
print("openai-python follow-up and errors OK")
