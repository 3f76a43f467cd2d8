"""MQTT publishing with a persistent queue of unacknowledged events."""
