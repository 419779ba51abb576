// Dapr's JavaScript SDK against `ledgerflow dev`: DaprWorkflowClient over gRPC (port
// DAPR_GRPC_PORT) and DaprClient's workflow API over HTTP (port DAPR_HTTP_PORT), both with
// DAPR_API_TOKEN. Prints one JSON line per check: {"check": name, "value": ...}; the Python
// test reads them. Run with NODE_PATH pointing at the installed packages.
"use strict";
const { CommunicationProtocolEnum, DaprClient, DaprWorkflowClient, WorkflowRuntimeStatus } = require("@dapr/dapr");

const host = "127.0.0.1";
const report = (check, value) => console.log(JSON.stringify({ check, value }));
const statusName = (state) => WorkflowRuntimeStatus[state.runtimeStatus];

async function grpcClient() {
  const client = new DaprWorkflowClient({ daprHost: host, daprPort: process.env.DAPR_GRPC_PORT });
  try {
    const id = await client.scheduleNewWorkflow("hello", "JS", "js-hello");
    const done = await client.waitForWorkflowCompletion(id, true, 30);
    report("grpc.hello", { id, status: statusName(done), output: done.serializedOutput, custom: done.customStatus });

    await client.scheduleNewWorkflow("approval", undefined, "js-approval");
    await client.waitForWorkflowStart("js-approval", false, 30);
    await client.suspendWorkflow("js-approval");
    report("grpc.suspended", statusName(await client.getWorkflowState("js-approval", false)));
    await client.resumeWorkflow("js-approval");
    await client.raiseEvent("js-approval", "approve", { by: "js" });
    const approved = await client.waitForWorkflowCompletion("js-approval", true, 30);
    report("grpc.approved", approved.serializedOutput);

    await client.scheduleNewWorkflow("sleeper", undefined, "js-sleeper");
    await client.waitForWorkflowStart("js-sleeper", false, 30);
    await client.terminateWorkflow("js-sleeper", "stopped");
    const terminated = await client.waitForWorkflowCompletion("js-sleeper", true, 30);
    report("grpc.terminated", { status: statusName(terminated), output: terminated.serializedOutput });
    report("grpc.purged", await client.purgeWorkflow("js-sleeper"));
    report("grpc.gone", (await client.getWorkflowState("js-sleeper", false)) === undefined);

    try {
      await client.raiseEvent("no-such-instance", "approve", {});
      report("grpc.unknown", "no error");
    } catch (err) {
      report("grpc.unknown", { code: err.code, details: err.details });
    }
    try {
      await client.scheduleNewWorkflow("approval", undefined, "js-approval2");
      await client.scheduleNewWorkflow("approval", undefined, "js-approval2");
      report("grpc.duplicate", "no error");
    } catch (err) {
      report("grpc.duplicate", { code: err.code });
    }
  } finally {
    await client.stop();
  }
}

async function httpClient() {
  const client = new DaprClient({ daprHost: host, daprPort: process.env.DAPR_HTTP_PORT,
                                  communicationProtocol: CommunicationProtocolEnum.HTTP });
  try {
    await client.start();  // waits for the sidecar: GET /v1.0/metadata
    const metadata = await client.metadata.get();
    report("http.metadata", { id: metadata.id });
    // An object is sent as JSON; a bare string would go as text/plain, which is not JSON (400).
    const id = await client.workflow.scheduleNewWorkflow("hello", { name: "HTTP" }, "js-http-hello");
    let state = await client.workflow.getWorkflowState(id);
    for (let i = 0; i < 300 && state.runtimeStatus !== "COMPLETED" && state.runtimeStatus !== "FAILED"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      state = await client.workflow.getWorkflowState(id);
    }
    report("http.hello", { status: state.runtimeStatus, output: state.properties["dapr.workflow.output"] });
    await client.workflow.scheduleNewWorkflow("approval", undefined, "js-http-approval");
    // Pause once it runs: a pause that lands during the instance's first step was seen to read
    // RUNNING for a moment (the step's status write came after the pause's) - not what this tests.
    for (let i = 0; i < 300 && (await client.workflow.getWorkflowState("js-http-approval")).runtimeStatus !== "RUNNING"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await client.workflow.pause("js-http-approval");
    report("http.paused", (await client.workflow.getWorkflowState("js-http-approval")).runtimeStatus);
    await client.workflow.resume("js-http-approval");
    await client.workflow.raiseEvent("js-http-approval", "approve", { by: "http" });
    await client.workflow.terminate("js-http-approval");
    await client.workflow.purge(id);
    try {
      await client.workflow.getWorkflowState(id);
      report("http.purged", "still there");
    } catch (err) {
      report("http.purged", "gone");
    }
  } finally {
    await client.stop();
  }
}

(async () => {
  await grpcClient();
  await httpClient();
  report("done", true);
})().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
