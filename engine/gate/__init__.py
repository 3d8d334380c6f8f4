"""The go/no-go gate before live: the checklist's record, its runner and its checks (the venue, a perpetuals
account, the configuration, the risk rules, history), the smoke trade, the validation scorecard and the stepped
clock a validation run uses."""
