"""The stream worker: live tumbling windows on a Kafka topic, checked and routed under a standing policy."""
