"""Compatibility check with the official `anthropic` Python SDK against a running proxy.

Usage: python anthropic_compat.py BASE_URL API_KEY [--expect-thinking]
BASE_URL has no `/v1` (the SDK adds it). With --expect-thinking (the demo streams simulated
reasoning by default) at least one thinking block must arrive.
Exits non-zero (with the failing assertion) if anything the SDK sees is off.
"""
import json
import sys
import urllib.request

import anthropic
from anthropic import Anthropic

base, key = sys.argv[1], sys.argv[2]
expect_thinking = "--expect-thinking" in sys.argv[3:]
client = Anthropic(base_url=base, api_key=key, max_retries=0, timeout=30)

# The model catalogue is the OpenAI-shaped /v1/models of the proxy.
req = urllib.request.Request(f"{base}/v1/models", headers={"Authorization": f"Bearer {key}"})
with urllib.request.urlopen(req, timeout=30) as resp:
    models = [m["id"] for m in json.load(resp)["data"]]
assert models, "models list is empty"
model = models[0]


def text_of(message):
    return "".join(b.text for b in message.content if b.type == "text")


done = client.messages.create(
    model=model,
    max_tokens=256,
    system="Be brief.",
    messages=[{"role": "user", "content": "Say hello"}],
)
assert done.type == "message" and done.role == "assistant", done
assert done.id.startswith("msg_"), done.id
assert done.stop_reason == "end_turn", done.stop_reason
text = text_of(done)
assert text and "Say hello" in text, text
assert done.usage.input_tokens > 0 and done.usage.output_tokens > 0, done.usage
if expect_thinking:
    assert done.content[0].type == "thinking", done.content
    assert done.content[0].thinking, done.content[0]
print(f"anthropic-python create OK: {len(text)} chars, usage {done.usage.input_tokens}/{done.usage.output_tokens}")

parts, thinking_parts, kinds = [], [], []
with client.messages.stream(
    model=model, max_tokens=256, messages=[{"role": "user", "content": "Stream please"}]
) as stream:
    for event in stream:
        kinds.append(event.type)
        if event.type == "content_block_delta":
            if event.delta.type == "text_delta":
                parts.append(event.delta.text)
            elif event.delta.type == "thinking_delta":
                thinking_parts.append(event.delta.thinking)
    final = stream.get_final_message()
streamed = "".join(parts)
assert "Stream please" in streamed, streamed
assert text_of(final) == streamed, (text_of(final), streamed)
assert final.stop_reason == "end_turn", final.stop_reason
assert final.usage.output_tokens > 0, final.usage
assert kinds[0] == "message_start" and "message_stop" in kinds, kinds
if expect_thinking:
    assert thinking_parts, f"no thinking delta arrived: {kinds}"
    assert any(b.type == "thinking" for b in final.content), final.content
    assert "".join(thinking_parts) not in streamed
print(f"anthropic-python stream OK: {len(streamed)} chars, thinking {len(''.join(thinking_parts))} chars")

# A follow-up turn that echoes the whole content (thinking included) continues the conversation.
follow = client.messages.create(
    model=model,
    max_tokens=256,
    system="Be brief.",
    messages=[
        {"role": "user", "content": "Say hello"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in done.content]},
        {"role": "user", "content": "And again"},
    ],
)
assert "Turn 2" in text_of(follow), text_of(follow)

counted = client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "Say hello"}])
longer = client.messages.count_tokens(
    model=model, messages=[{"role": "user", "content": "Say hello, and then say a great deal more"}]
)
assert 0 < counted.input_tokens < longer.input_tokens, (counted, longer)
again = client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "Say hello"}])
assert again.input_tokens == counted.input_tokens

try:
    client.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    raise AssertionError("unknown model accepted")
except anthropic.NotFoundError as e:
    assert e.status_code == 404, e
try:
    Anthropic(base_url=base, api_key="sk-wrong", max_retries=0).messages.create(
        model=model, max_tokens=5, messages=[{"role": "user", "content": "x"}]
    )
    raise AssertionError("wrong key accepted")
except anthropic.AuthenticationError as e:
    assert e.status_code == 401, e
print(f"anthropic-python follow-up, count_tokens ({counted.input_tokens}) and errors OK")
