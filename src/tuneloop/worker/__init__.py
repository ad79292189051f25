"""The worker: the tick loop under a leader lease, the schedule and the triggers."""
