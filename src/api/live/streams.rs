//! The caps on streamed runs open at once: in all, and per client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::api::error::ApiError;
use crate::config::StreamSettings;
use crate::job::Client;
use crate::metrics::{Metrics, ReasonLabel};

/// The streamed runs open now, in all and per client.
#[derive(Debug)]
pub(crate) struct Streams {
    settings: StreamSettings,
    open: Mutex<(usize, HashMap<Client, usize>)>,
    metrics: Arc<Metrics>,
}

/// One streamed run counted open, until dropped.
#[derive(Debug)]
pub(crate) struct Open {
    streams: Arc<Streams>,
    client: Client,
}

impl Streams {
    pub(crate) fn new(settings: StreamSettings, metrics: Arc<Metrics>) -> Arc<Streams> {
        Arc::new(Streams {
            settings,
            open: Mutex::new((0, HashMap::new())),
            metrics,
        })
    }

    pub(crate) fn settings(&self) -> &StreamSettings {
        &self.settings
    }

    /// Counts one more streamed run of `client`, or refuses it (429,
    /// `too_many_streams`) at either cap.
    pub(crate) fn open(self: &Arc<Self>, client: &Client) -> Result<Open, ApiError> {
        let mut open = self.open.lock().expect("never poisoned");
        let (total, clients) = &mut *open;
        let mine = clients.get(client).copied().unwrap_or(0);
        let refused = if *total >= self.settings.max_open {
            Some(("total", self.settings.max_open, "open on this server"))
        } else if mine >= self.settings.client_max_open {
            Some((
                "client",
                self.settings.client_max_open,
                "open for this client",
            ))
        } else {
            None
        };
        if let Some((reason, cap, whose)) = refused {
            let reason = reason.to_string();
            self.metrics
                .streams_refused
                .get_or_create(&ReasonLabel { reason })
                .inc();
            return Err(ApiError::TooManyStreams(format!(
                "{cap} streamed runs are {whose} already (the most there may be); end one or retry later"
            )));
        }
        *total += 1;
        clients.insert(client.clone(), mine + 1);
        self.metrics.streams_open.set(*total as i64);
        Ok(Open {
            streams: self.clone(),
            client: client.clone(),
        })
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().expect("never poisoned");
        let (total, clients) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(mine) = clients.get_mut(&self.client) {
            *mine -= 1;
            if *mine == 0 {
                clients.remove(&self.client);
            }
        }
        self.streams.metrics.streams_open.set(*total as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_capped_in_all_and_per_client_and_freed_when_dropped() {
        let metrics = Arc::new(Metrics::new());
        let settings = StreamSettings {
            max_open: 3,
            client_max_open: 2,
            ..StreamSettings::default()
        };
        let streams = Streams::new(settings, metrics.clone());
        let (a, b): (Client, Client) = (Arc::from("a"), Arc::from("b"));
        let first = streams.open(&a).unwrap();
        let _second = streams.open(&a).unwrap();
        let refused = streams.open(&a).unwrap_err();
        assert_eq!(refused.code(), "too_many_streams");
        assert!(
            refused
                .to_string()
                .contains("2 streamed runs are open for this client")
        );
        let _third = streams.open(&b).unwrap();
        let all = streams.open(&b).unwrap_err();
        assert!(
            all.to_string()
                .contains("3 streamed runs are open on this server")
        );
        assert_eq!(metrics.streams_open.get(), 3);
        drop(first);
        assert_eq!(metrics.streams_open.get(), 2);
        assert!(streams.open(&a).is_ok(), "a's first is freed");
        let text = metrics.encode();
        assert!(
            text.contains("code_runner_streams_refused_total{reason=\"client\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("code_runner_streams_refused_total{reason=\"total\"} 1"),
            "{text}"
        );
    }
}
