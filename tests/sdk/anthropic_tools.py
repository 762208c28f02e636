"""Tool use through the official `anthropic` Python SDK: a `tool_use` round trip, streamed and
not, with `tool_choice` `any`.

Usage: python anthropic_tools.py BASE_URL API_KEY   (BASE_URL without /v1)
"""
import json
import sys

from anthropic import Anthropic

base, key = sys.argv[1], sys.argv[2]
client = Anthropic(base_url=base, api_key=key, max_retries=0, timeout=60)
model = "claude-sonnet-4-5"
args = {"file_path": "/tmp/a.txt", "content": "hi"}
tools = [{"name": "Write", "description": "Writes a file",
          "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"},
              "content": {"type": "string"}}, "required": ["file_path", "content"]}}]
ask = f"Save it.\ncall Write {json.dumps(args)}"

msg = client.messages.create(model=model, max_tokens=512, tools=tools,
                             tool_choice={"type": "any"},
                             messages=[{"role": "user", "content": ask}])
assert msg.stop_reason == "tool_use", msg
use = [b for b in msg.content if b.type == "tool_use"][0]
assert use.name == "Write" and use.input == args, use

result = client.messages.create(
    model=model, max_tokens=512, tools=tools,
    messages=[{"role": "user", "content": ask},
              {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                            "content": "written"}]}])
text = "".join(b.text for b in result.content if b.type == "text")
assert text == "The tool returned: written", text
assert result.stop_reason == "end_turn", result.stop_reason
print("anthropic-python tool_use round trip (non-stream) OK")

with client.messages.stream(model=model, max_tokens=512, tools=tools,
                            tool_choice={"type": "any"},
                            messages=[{"role": "user", "content": ask}]) as stream:
    final = stream.get_final_message()
assert final.stop_reason == "tool_use", final
use = [b for b in final.content if b.type == "tool_use"][0]
assert use.name == "Write" and use.input == args, use
print("anthropic-python tool_use (stream) OK")
