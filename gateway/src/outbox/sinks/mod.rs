//! Where incident events leave the gateway: HTTP endpoints and webhooks, DingTalk and WeCom
//! robots, MQTT brokers (upstream and subscribers), the gateway's own incident topic, and the
//! platform heartbeat.

pub mod mqtt_incidents;
