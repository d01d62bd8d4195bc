//! The simulated devices a gateway bridges: a light, a thermostat and a door lock. Each
//! holds its state as a JSON object (what it reports to its shadow) and applies a desired
//! delta only if every key is known and every value is in range — all or nothing. This
//! module must never do I/O.

use serde_json::{Map, Value, json};
use std::fmt;

/// The kinds of simulated device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A light.
    Light,
    /// A thermostat.
    Thermostat,
    /// A door lock.
    DoorLock,
}

impl Kind {
    /// The device part of its thing name (`<pid>_<aid>_<device>`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Light => "light",
            Kind::Thermostat => "thermostat",
            Kind::DoorLock => "lock",
        }
    }

    /// Every kind.
    pub fn all() -> [Kind; 3] {
        [Kind::Light, Kind::Thermostat, Kind::DoorLock]
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One simulated device.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    pub(crate) kind: Kind,
    pub(crate) state: Map<String, Value>,
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A desired-state change a device refuses (nothing of the delta is applied).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DeviceError {
    /// The device has no such setting.
    #[error("the {kind} has no setting `{key}`")]
    UnknownSetting {
        /// The device's kind.
        kind: Kind,
        /// The setting asked for.
        key: String,
    },
    /// The value is outside the setting's range or of the wrong type.
    #[error("the {kind} cannot set `{key}` to {value}")]
    BadValue {
        /// The device's kind.
        kind: Kind,
        /// The setting.
        key: String,
        /// The value refused.
        value: Value,
    },
}

impl Device {
    /// A device in its power-on state.
    pub fn new(kind: Kind) -> Device {
        let state = match kind {
            Kind::Light => json!({"on": false, "brightness": 100}),
            Kind::Thermostat => json!({"setpoint": 20, "mode": "heat"}),
            Kind::DoorLock => json!({"locked": true}),
        };
        Device {
            kind,
            state: object(state),
        }
    }

    /// Applies a desired delta; on any invalid key or value nothing changes.
    pub fn apply(&mut self, delta: &Map<String, Value>) -> Result<(), DeviceError> {
        for (key, value) in delta {
            self.check(key, value)?;
        }
        for (key, value) in delta {
            self.state.insert(key.clone(), value.clone());
        }
        Ok(())
    }

    fn check(&self, key: &str, value: &Value) -> Result<(), DeviceError> {
        let ok = match (self.kind, key) {
            (Kind::Light, "on") | (Kind::DoorLock, "locked") => value.is_boolean(),
            (Kind::Light, "brightness") => value.as_u64().is_some_and(|b| b <= 100),
            (Kind::Thermostat, "setpoint") => {
                value.as_f64().is_some_and(|t| (10.0..=30.0).contains(&t))
            }
            (Kind::Thermostat, "mode") => matches!(value.as_str(), Some("heat" | "cool" | "off")),
            _ => {
                return Err(DeviceError::UnknownSetting {
                    kind: self.kind,
                    key: key.to_string(),
                });
            }
        };
        if ok {
            Ok(())
        } else {
            Err(DeviceError::BadValue {
                kind: self.kind,
                key: key.to_string(),
                value: value.clone(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_deltas_apply_and_invalid_ones_change_nothing() {
        let mut t = Device::new(Kind::Thermostat);
        t.apply(&object(json!({"setpoint": 22.5}))).unwrap();
        assert_eq!(t.state["setpoint"], json!(22.5));
        let before = t.clone();
        assert!(
            t.apply(&object(json!({"mode": "cool", "setpoint": 99})))
                .is_err()
        );
        assert_eq!(
            t.apply(&object(json!({"colour": "red"}))),
            Err(DeviceError::UnknownSetting {
                kind: Kind::Thermostat,
                key: "colour".into()
            })
        );
        assert_eq!(t, before);
        let mut lock = Device::new(Kind::DoorLock);
        lock.apply(&object(json!({"locked": false}))).unwrap();
        assert_eq!(lock.state["locked"], json!(false));
    }
}
