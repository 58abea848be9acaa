//! Dead letters on JetStream: the stream `<stream>_DEAD` (subject `<stream>.dead`, file storage,
//! kept until removed). A dead letter's id is its stream sequence. Listing reads the stream with a
//! short-lived consumer of its own, so it works from any node while the others deliver.

use crate::{QueueStream, Settings, publish_all, stream_failure, unavailable, unavailable_boxed};
use async_nats::jetstream::Context;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::stream::{self, StorageType};
use futures_util::StreamExt;
use std::time::Duration;
use switchyard_queue::{Commit, DeadLetter, QueueError, Reading, decode, encode};

/// Dead letters read per request while listing.
const LIST_BATCH: usize = 1000;

#[derive(Clone)]
pub(crate) struct DeadLetters {
    js: Context,
    subject: String,
    stream: stream::Stream,
}

impl DeadLetters {
    pub(crate) async fn open(js: &Context, settings: &Settings) -> Result<Self, QueueError> {
        let name = format!("{}_DEAD", settings.stream);
        let subject = format!("{}.dead", settings.stream);
        js.create_or_update_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            storage: StorageType::File,
            num_replicas: settings.replicas,
            ..Default::default()
        })
        .await
        .map_err(stream_failure(QueueStream::DeadLetters, settings.max_bytes))?;
        let stream = js
            .get_stream(&name)
            .await
            .map_err(unavailable("opening the dead-letter stream"))?;
        Ok(Self {
            js: js.clone(),
            subject,
            stream,
        })
    }

    pub(crate) fn store(&self, letters: Vec<DeadLetter>) -> Commit<()> {
        let items: Result<Vec<_>, _> = letters.iter().map(|l| Ok((None, encode(l)?))).collect();
        let (js, subject) = (self.js.clone(), self.subject.clone());
        Box::pin(async move {
            // No budget of its own: a full store is the server's to report.
            publish_all(&js, &subject, items?, 0).await?;
            Ok(())
        })
    }

    /// Every dead letter, oldest first.
    pub(crate) fn list(&self) -> Reading<Vec<(u64, DeadLetter)>> {
        let stream = self.stream.clone();
        Box::pin(async move {
            let listing = "listing dead letters";
            let consumer: PullConsumer = stream
                .create_consumer(pull::Config {
                    deliver_policy: DeliverPolicy::All,
                    ack_policy: AckPolicy::None,
                    inactive_threshold: Duration::from_secs(30),
                    ..Default::default()
                })
                .await
                .map_err(unavailable(listing))?;
            let info = consumer.get_info().await.map_err(unavailable(listing))?;
            let total = usize::try_from(info.num_pending).unwrap_or(usize::MAX);
            let mut letters = Vec::with_capacity(total.min(1 << 16));
            while letters.len() < total {
                let want = (total - letters.len()).min(LIST_BATCH);
                let mut batch = consumer
                    .batch()
                    .max_messages(want)
                    .expires(Duration::from_secs(2))
                    .messages()
                    .await
                    .map_err(unavailable(listing))?;
                let before = letters.len();
                while let Some(message) = batch.next().await {
                    let message = message.map_err(unavailable_boxed(listing))?;
                    let Ok(seq) = message.info().map(|i| i.stream_sequence) else {
                        continue;
                    };
                    letters.push((seq, decode::<DeadLetter>(&message.payload)?));
                }
                if letters.len() == before {
                    break; // removed while listing
                }
            }
            let _ = stream.delete_consumer(&info.name).await;
            Ok(letters)
        })
    }

    pub(crate) fn remove(&self, ids: Vec<u64>) -> Commit<()> {
        let stream = self.stream.clone();
        Box::pin(async move {
            for id in ids {
                stream
                    .delete_message(id)
                    .await
                    .map_err(unavailable("removing a dead letter"))?;
            }
            Ok(())
        })
    }
}
