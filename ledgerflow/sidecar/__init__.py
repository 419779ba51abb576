"""`ledgerflow sidecar`: Dapr's sidecar for workflow apps in any language (README, "Dapr apps in
any language"). `work_items` brokers work between the app's SDK streams and the sidecar's steps
and activity calls; `replay` is the replayer that hands a step to the SDK; `actions` maps the
SDK's answer to the engine's actions and history; `activities` forwards activity calls; `service`
serves the worker half of the protocol; `runtime` wires them into Ledgerflow's runtime."""
