"""The agent: one tick from observation to intents, the RiskGuard that gates them, the journal."""
