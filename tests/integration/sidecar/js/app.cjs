// A Dapr workflow app in JavaScript, written for Dapr (`@dapr/dapr` from npm) and nothing else:
// it registers its workflows and activities with WorkflowRuntime, which connects to the sidecar at
// DAPR_GRPC_PORT, and drives them with DaprWorkflowClient. A chain, a fan-out, a timer and an
// external event; prints one JSON line per workflow: {"workflow", "id", "status", "output"}.
"use strict";
const { DaprWorkflowClient, WorkflowRuntime, WorkflowRuntimeStatus } = require("@dapr/dapr");

const double = async (_ctx, n) => n * 2;
const greet = async (_ctx, name) => `Hello, ${name}!`;

const chain = async function* (ctx, n) {
  const a = yield ctx.callActivity(double, n);
  const b = yield ctx.callActivity(double, a);
  const c = yield ctx.callActivity(double, b);
  return [a, b, c];
};

const fanOut = async function* (ctx, count) {
  const tasks = [];
  for (let i = 1; i <= count; i++) tasks.push(ctx.callActivity(double, i));
  const results = yield ctx.whenAll(tasks);
  return results.reduce((sum, x) => sum + x, 0);
};

const timer = async function* (ctx, seconds) {
  const before = ctx.getCurrentUtcDateTime().getTime();
  yield ctx.createTimer(seconds);
  const after = ctx.getCurrentUtcDateTime().getTime();
  return (after - before) / 1000 >= seconds;
};

const approval = async function* (ctx, name) {
  ctx.setCustomStatus("waiting for approval");
  const decision = yield ctx.waitForExternalEvent("approve");
  const greeting = yield ctx.callActivity(greet, name);
  return { greeting, approvedBy: decision.by };
};

async function main() {
  const runtime = new WorkflowRuntime()
    .registerWorkflow(chain).registerWorkflow(fanOut).registerWorkflow(timer).registerWorkflow(approval)
    .registerActivity(double).registerActivity(greet);
  await runtime.start();
  const client = new DaprWorkflowClient();
  const report = async (name, id) => {
    const state = await client.waitForWorkflowCompletion(id, true, 60);
    console.log(JSON.stringify({ workflow: name, id, status: WorkflowRuntimeStatus[state.runtimeStatus],
                                 output: state.serializedOutput }));
  };
  try {
    const ids = {
      chain: await client.scheduleNewWorkflow(chain, 1),
      fanOut: await client.scheduleNewWorkflow(fanOut, 10),
      timer: await client.scheduleNewWorkflow(timer, 2),
      approval: await client.scheduleNewWorkflow(approval, "JS"),
    };
    await client.waitForWorkflowStart(ids.approval, false, 60);
    await client.raiseEvent(ids.approval, "approve", { by: "reviewer" });
    for (const [name, id] of Object.entries(ids)) await report(name, id);
  } finally {
    await client.stop();
    await runtime.stop();
  }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
