"""Rolling a promoted candidate out: deployments, rollout ticks, guardrails, routing.

policy    pure: a deployment's config, step, time and check results -> an action
checks    guardrails from SQL aggregates and the sequential engagement test
manager   DeploymentManager: deploy (safety checks), tick, promote, rollback
routing   which model serves a unit: holdout, then experiment, then rollout, then champion
"""
