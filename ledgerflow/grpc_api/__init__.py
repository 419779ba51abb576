"""Dapr's workflow gRPC API: the client half of the Durable Task `TaskHubSidecarService`, so
Dapr's SDKs in any language manage Ledgerflow's workflows unmodified (see README, "Dapr
clients"). `server` serves it; `service` maps each call onto `WorkflowManager`; `protocol`
holds the generated messages and the conversions."""
