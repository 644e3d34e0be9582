//! Where readings and documents enter: the MQTT subscription (agents' births, statuses and
//! reading batches; weather documents) and the weather feeds the gateway polls.

pub mod feeds;
pub mod mqtt;
pub mod mqtt_config;
