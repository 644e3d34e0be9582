//! Where incident events leave the gateway, one module per kind of sink: HTTP endpoints and
//! webhooks, DingTalk and WeCom robots, other MQTT brokers (upstream and subscribers), the
//! gateway's own incident topic, and the platform heartbeat.

pub mod heartbeat;
pub mod http;
pub mod mqtt;
pub mod mqtt_incidents;
pub mod puback;
pub mod robots;
