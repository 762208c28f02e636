"""Tool calls and the Responses API through the official `openai` Python SDK.

Usage: python openai_tools.py BASE_URL API_KEY [MODEL]   (BASE_URL ends with /v1)
The proxy runs in demo mode: the simulated model calls a tool when the user's message has a
line `call <tool> <json>` and quotes the first tool result when it gets one
(docs/tool-emulation.md). Exits non-zero with the failing assertion if anything is off.
"""
import json
import sys

from openai import OpenAI

base, key = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=base, api_key=key, max_retries=0, timeout=60)
model = sys.argv[3] if len(sys.argv) > 3 else "GPT5"
args = {"file_path": "/tmp/sdk.txt", "content": "hi"}
tools = [
    {"type": "function", "function": {"name": "Write", "description": "Writes a file",
        "parameters": {"type": "object", "properties": {"file_path": {"type": "string"},
            "content": {"type": "string"}}, "required": ["file_path", "content"]}}},
    {"type": "function", "function": {"name": "Read", "description": "Reads a file",
        "parameters": {"type": "object", "properties": {"file_path": {"type": "string"}}}}},
]
ask = f"Save it.\ncall Write {json.dumps(args)}"

# Not streamed, with a named tool_choice.
done = client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": ask}], tools=tools,
    tool_choice={"type": "function", "function": {"name": "Write"}})
choice = done.choices[0]
assert choice.finish_reason == "tool_calls", choice
call = choice.message.tool_calls[0]
assert call.type == "function" and call.function.name == "Write", call
assert json.loads(call.function.arguments) == args, call.function.arguments

# The result goes back; the model quotes it.
follow = client.chat.completions.create(
    model=model, tools=tools,
    messages=[{"role": "user", "content": ask}, choice.message.model_dump(exclude_none=True),
              {"role": "tool", "tool_call_id": call.id, "content": "File written"}])
assert follow.choices[0].message.content == "The tool returned: File written", follow
assert follow.choices[0].finish_reason == "stop"
print("openai-python tools (non-stream, named choice, result round trip) OK")

# Streamed, two parallel calls.
calls, finish = {}, None
stream = client.chat.completions.create(
    model=model, tools=tools, stream=True, parallel_tool_calls=True,
    messages=[{"role": "user", "content": f"Both.\ncall Read {{\"file_path\": \"/a\"}}\ncall Write {json.dumps(args)}"}])
for chunk in stream:
    for c in chunk.choices:
        for tc in c.delta.tool_calls or []:
            entry = calls.setdefault(tc.index, {"id": None, "name": None, "args": ""})
            entry["id"] = tc.id or entry["id"]
            if tc.function and tc.function.name:
                entry["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                entry["args"] += tc.function.arguments
        finish = c.finish_reason or finish
assert finish == "tool_calls", finish
assert [calls[i]["name"] for i in sorted(calls)] == ["Read", "Write"], calls
assert json.loads(calls[1]["args"]) == args and calls[0]["id"] != calls[1]["id"], calls
print("openai-python tools (stream, parallel) OK")

# tool_choice none: no call, a text answer.
none = client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": ask}], tools=tools, tool_choice="none")
assert none.choices[0].finish_reason == "stop" and not none.choices[0].message.tool_calls, none
print("openai-python tool_choice none OK")

# The Responses API with a function tool, not streamed then streamed.
rtools = [{"type": "function", "name": "Write", "description": "Writes a file",
           "parameters": tools[0]["function"]["parameters"]}]
resp = client.responses.create(model=model, input=ask, tools=rtools)
assert resp.status == "completed", resp
fc = [o for o in resp.output if o.type == "function_call"]
assert fc and fc[0].name == "Write" and json.loads(fc[0].arguments) == args, resp.output
after = client.responses.create(
    model=model, tools=rtools, previous_response_id=resp.id,
    input=[{"type": "function_call_output", "call_id": fc[0].call_id, "output": "done"}])
assert after.output_text == "The tool returned: done", after.output_text
print("openai-python responses.create (function call, previous_response_id) OK")

kinds, arg_deltas, final = [], [], None
with client.responses.stream(model=model, input=ask, tools=rtools) as s:
    for ev in s:
        kinds.append(ev.type)
        if ev.type == "response.function_call_arguments.delta":
            arg_deltas.append(ev.delta)
    final = s.get_final_response()
assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
assert json.loads("".join(arg_deltas)) == args, arg_deltas
assert any(o.type == "function_call" for o in final.output), final.output
text = client.responses.create(model=model, input="Say hello", stream=True)
deltas = [e.delta for e in text if e.type == "response.output_text.delta"]
assert "Say hello" in "".join(deltas), deltas
print("openai-python responses stream OK")
