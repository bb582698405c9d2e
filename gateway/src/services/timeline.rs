//! The day in pictures: per-minute samples of each skill group's queue length, longest wait,
//! first-response time and reply rate, kept in memory for the last 24 hours (1440 samples; a
//! restart starts a new day's picture), for the lead's dashboard charts
//! (`GET /api/v1/dashboard/series`).
//!
//! Queue length and longest wait are the live values at the sample; first-response time and
//! reply rate are over the sessions opened in the 15 minutes before it (a sliding mean: one
//! minute holds too few conversations to say anything). The dashboard takes the samples
//! (`Dashboard::sample`, each minute from `dashboard::sample_every_minute`) and reads them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use utoipa::ToSchema;

/// Samples kept: a day of minutes.
pub const KEPT: usize = 1440;
/// The window of the first-response and reply-rate figures of a sample (minutes).
pub const RESPONSE_WINDOW_MIN: i64 = 15;

/// One group at one instant.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Point {
    /// When (ms since the epoch).
    pub at: i64,
    /// Conversations waiting in the queue.
    pub queued: u32,
    /// The longest current wait among them (s); null when nobody waits.
    pub longest_wait_s: Option<i64>,
    /// Mean first response of the sessions opened in the 15 minutes before (s).
    pub first_response_s: Option<f64>,
    /// Share of those sessions answered (0–1).
    pub reply_rate: Option<f64>,
}

/// One sample of every group.
#[derive(Debug, Clone)]
struct Sample {
    at: i64,
    groups: BTreeMap<String, Point>,
}

/// The samples of the day, shared by the dashboard and the sampler.
#[derive(Debug, Default)]
pub struct Timeline {
    samples: Mutex<VecDeque<Sample>>,
}

/// One group's series.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupSeries {
    pub id: String,
    pub name: String,
    /// Oldest first, one a minute, the last one taken at the request.
    pub points: Vec<Point>,
}

/// The series a lead may see.
#[derive(Debug, Serialize, ToSchema)]
pub struct Series {
    pub now: i64,
    /// Minutes between samples.
    pub step_minutes: u32,
    pub groups: Vec<GroupSeries>,
}

impl Timeline {
    pub fn new() -> Arc<Timeline> {
        Arc::new(Timeline::default())
    }

    /// Keeps one sample of every group (`groups`: group id → its point).
    pub fn record(&self, at: i64, groups: BTreeMap<String, Point>) {
        self.push(Sample { at, groups });
    }

    /// Group `id`'s points taken at or after `since`, oldest first.
    pub fn points(&self, id: &str, since: i64) -> Vec<Point> {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.iter().filter(|s| s.at >= since).filter_map(|s| s.groups.get(id).cloned()).collect()
    }

    fn push(&self, sample: Sample) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.push_back(sample);
        while samples.len() > KEPT {
            samples.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_day_of_samples() {
        let t = Timeline::default();
        for at in 0..(KEPT as i64 + 10) {
            t.push(Sample { at, groups: BTreeMap::new() });
        }
        let samples = t.samples.lock().unwrap();
        assert_eq!(samples.len(), KEPT);
        assert_eq!(samples.front().map(|s| s.at), Some(10));
    }
}
