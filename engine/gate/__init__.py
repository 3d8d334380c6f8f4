"""The go/no-go gate before live: the checklist's record and its checks (configuration, history, the venue),
the smoke trade, the validation scorecard and the stepped clock a validation run uses."""
