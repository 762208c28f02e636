// Compatibility check with the official `openai` Node SDK against a running proxy.
// Usage: node openai_compat.mjs BASE_URL API_KEY   (run with NODE_PATH or from a folder whose
// node_modules holds `openai`). Exits non-zero on the first failed assertion.
import assert from "node:assert/strict";
import OpenAI from "openai";

const [base, key] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base, apiKey: key, maxRetries: 0, timeout: 30000 });

const models = [];
for await (const m of client.models.list()) models.push(m.id);
assert.ok(models.length > 0, "models list is empty");
const model = models[0];

const done = await client.chat.completions.create({ model, messages: [{ role: "user", content: "Say hello from node" }] });
assert.equal(done.object, "chat.completion");
const text = done.choices[0].message.content;
assert.ok(text.includes("Say hello from node"), text);
assert.equal(done.choices[0].finish_reason, "stop");
assert.ok(done.usage.total_tokens > 0);

const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Stream from node" }],
  stream: true,
  stream_options: { include_usage: true },
});
let streamed = "";
let finish = null;
let usage = null;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const choice of chunk.choices) {
    streamed += choice.delta?.content ?? "";
    if (choice.finish_reason) finish = choice.finish_reason;
  }
}
assert.ok(streamed.includes("Stream from node"), streamed);
assert.equal(finish, "stop");
assert.ok(usage && usage.completion_tokens > 0);

await assert.rejects(
  client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }),
  (e) => e.status === 404,
);
console.log(`openai-node OK: ${models.length} models, non-stream ${text.length} chars, stream ${streamed.length} chars`);
