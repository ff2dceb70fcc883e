//! The simulated machine, as Azure's `SimulatedTemperatureSensor` computes it: the machine
//! temperature starts at its minimum and climbs by a random step in [-0.25, 1.25) (on average
//! +0.5) until it passes the maximum, then wanders by [-0.5, 0.5); the pressure follows the
//! temperature linearly from the minimum to the maximum pressure; the ambient temperature is
//! the configured one ±0.5 and the humidity the configured percentage ±1.
//!
//! Invariant: the parameters of a [`Simulator`] passed [`SimulatorParameters::validate`], so
//! every reading is finite.

use rand::Rng;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The simulation's constants (Azure's `machineTempMin` ... `ambientHumidity` settings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimulatorParameters {
    /// Machine temperature at the start and after a reset, °C.
    pub machine_temp_min: f64,
    /// Machine temperature past which it stops climbing, °C.
    pub machine_temp_max: f64,
    /// Pressure at the minimum temperature, psi.
    pub machine_pressure_min: f64,
    /// Pressure at the maximum temperature, psi.
    pub machine_pressure_max: f64,
    /// Mean ambient temperature, °C.
    pub ambient_temp: f64,
    /// Mean ambient humidity, %.
    pub ambient_humidity: i32,
}

impl Default for SimulatorParameters {
    /// Azure's defaults: 21-100 °C, 1-10 psi, ambient 21 °C and 25 %.
    fn default() -> Self {
        Self {
            machine_temp_min: 21.0,
            machine_temp_max: 100.0,
            machine_pressure_min: 1.0,
            machine_pressure_max: 10.0,
            ambient_temp: 21.0,
            ambient_humidity: 25,
        }
    }
}

/// Why [`SimulatorParameters`] cannot be simulated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParameterError {
    /// A parameter is NaN or infinite.
    #[error("simulator parameter {name} must be a finite number")]
    NotFinite {
        /// The parameter's name.
        name: &'static str,
    },
    /// The machine temperature range is empty.
    #[error("machineTempMax must exceed machineTempMin")]
    EmptyTemperatureRange,
}

impl SimulatorParameters {
    /// Checks that every value is finite and the temperature range is not empty (the
    /// pressure slope divides by it).
    pub fn validate(&self) -> Result<(), ParameterError> {
        let values = [
            ("machineTempMin", self.machine_temp_min),
            ("machineTempMax", self.machine_temp_max),
            ("machinePressureMin", self.machine_pressure_min),
            ("machinePressureMax", self.machine_pressure_max),
            ("ambientTemp", self.ambient_temp),
        ];
        if let Some((name, _)) = values.iter().find(|(_, v)| !v.is_finite()) {
            return Err(ParameterError::NotFinite { name });
        }
        if self.machine_temp_max <= self.machine_temp_min {
            return Err(ParameterError::EmptyTemperatureRange);
        }
        Ok(())
    }
}

/// The machine part of a reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Machine {
    /// °C.
    pub temperature: f64,
    /// psi.
    pub pressure: f64,
}

/// The ambient part of a reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ambient {
    /// °C.
    pub temperature: f64,
    /// %.
    pub humidity: i32,
}

/// One simulated reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// The machine.
    pub machine: Machine,
    /// Its surroundings.
    pub ambient: Ambient,
}

/// The message body, shaped like Azure's `MessageBody`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    machine: &'a Machine,
    ambient: &'a Ambient,
    time_created: String,
}

impl Reading {
    /// The JSON body `{"machine":{..},"ambient":{..},"timeCreated":"<RFC 3339 UTC>"}`.
    pub fn to_body(&self, time_created: OffsetDateTime) -> Vec<u8> {
        let time_created = time_created
            .to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .unwrap_or_default();
        let body = Body {
            machine: &self.machine,
            ambient: &self.ambient,
            time_created,
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

/// The simulated machine's state.
#[derive(Debug, Clone)]
pub struct Simulator {
    parameters: SimulatorParameters,
    temperature: f64,
}

impl Simulator {
    /// A machine at its minimum temperature.
    pub fn new(parameters: SimulatorParameters) -> Result<Self, ParameterError> {
        parameters.validate()?;
        Ok(Self {
            parameters,
            temperature: parameters.machine_temp_min,
        })
    }

    /// The current machine temperature, °C.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// Cools the machine back to its minimum temperature.
    pub fn reset(&mut self) {
        self.temperature = self.parameters.machine_temp_min;
    }

    /// Advances the machine temperature by one step and reads every value.
    pub fn step(&mut self, rng: &mut impl Rng) -> Reading {
        let p = &self.parameters;
        self.temperature += if self.temperature > p.machine_temp_max {
            rng.random::<f64>() - 0.5
        } else {
            -0.25 + rng.random::<f64>() * 1.5
        };
        let slope = (p.machine_pressure_max - p.machine_pressure_min)
            / (p.machine_temp_max - p.machine_temp_min);
        Reading {
            machine: Machine {
                temperature: self.temperature,
                pressure: p.machine_pressure_min + (self.temperature - p.machine_temp_min) * slope,
            },
            ambient: Ambient {
                temperature: p.ambient_temp + rng.random::<f64>() - 0.5,
                humidity: p.ambient_humidity.saturating_add(rng.random_range(-1..=1)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use serde_json::Value;

    use super::*;

    fn simulator() -> Simulator {
        Simulator::new(SimulatorParameters::default()).unwrap()
    }

    #[test]
    fn temperature_climbs_from_the_minimum_past_the_maximum_then_hovers() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut sim = simulator();
        assert!((sim.temperature() - 21.0).abs() < f64::EPSILON);
        let first = sim.step(&mut rng);
        assert!((20.75..22.25).contains(&first.machine.temperature));
        // 79 °C at +0.5 on average: about 160 steps; 1000 is plenty.
        let mut steps = 1;
        while sim.temperature() <= 100.0 {
            let before = sim.temperature();
            let reading = sim.step(&mut rng);
            let delta = reading.machine.temperature - before;
            assert!((-0.25..1.25).contains(&delta), "{delta}");
            steps += 1;
            assert!(steps < 1000, "never reached the maximum");
        }
        for _ in 0..1000 {
            let before = sim.temperature();
            let delta = sim.step(&mut rng).machine.temperature - before;
            if before > 100.0 {
                assert!((-0.5..0.5).contains(&delta), "{delta}");
            }
        }
        assert!(sim.temperature() > 95.0, "stays near or above the maximum");
    }

    #[test]
    fn pressure_follows_temperature_and_ambient_stays_near_its_mean() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut sim = simulator();
        for _ in 0..500 {
            let r = sim.step(&mut rng);
            let expected = 1.0 + (r.machine.temperature - 21.0) * 9.0 / 79.0;
            assert!((r.machine.pressure - expected).abs() < 1e-9);
            assert!((20.5..21.5).contains(&r.ambient.temperature));
            assert!((24..=26).contains(&r.ambient.humidity));
        }
    }

    #[test]
    fn reset_returns_to_the_minimum() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut sim = simulator();
        for _ in 0..50 {
            sim.step(&mut rng);
        }
        assert!(sim.temperature() > 25.0);
        sim.reset();
        assert!((sim.temperature() - 21.0).abs() < f64::EPSILON);
    }

    #[test]
    fn body_has_azures_shape() {
        let reading = Reading {
            machine: Machine {
                temperature: 30.5,
                pressure: 2.0,
            },
            ambient: Ambient {
                temperature: 21.25,
                humidity: 25,
            },
        };
        let time = time::macros::datetime!(2024-05-06 07:08:09.5 +02:00);
        let body: Value = serde_json::from_slice(&reading.to_body(time)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "machine": {"temperature": 30.5, "pressure": 2.0},
                "ambient": {"temperature": 21.25, "humidity": 25},
                "timeCreated": "2024-05-06T05:08:09.5Z"
            })
        );
    }

    #[test]
    fn unusable_parameters_are_rejected() {
        let flat = SimulatorParameters {
            machine_temp_max: 21.0,
            ..SimulatorParameters::default()
        };
        assert_eq!(
            Simulator::new(flat).unwrap_err(),
            ParameterError::EmptyTemperatureRange
        );
        let nan = SimulatorParameters {
            ambient_temp: f64::NAN,
            ..SimulatorParameters::default()
        };
        assert_eq!(
            nan.validate(),
            Err(ParameterError::NotFinite {
                name: "ambientTemp"
            })
        );
    }
}
