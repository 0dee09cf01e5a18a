"""The MQTT side: topics, the contract's payload models, the link, commands, desired config."""
