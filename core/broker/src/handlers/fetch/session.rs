//! Incremental fetch sessions (KIP-227): the front end's one piece of state beyond a
//! connection. A consumer that fetches the same partitions again and again opens a session
//! with a full fetch; later fetches name only the partitions whose position changed (and
//! those to forget), and the answer leaves out partitions with nothing new.
//!
//! - Session id 0, epoch -1: a full fetch without a session. Epoch -1 with an id closes it.
//! - Epoch 0: a full fetch that opens a session (closing the one named, if any); the answer
//!   carries the new id, or 0 when no slot could be had.
//! - Epoch n > 0: an incremental fetch on an open session. An unknown id is
//!   FETCH_SESSION_ID_NOT_FOUND, a wrong epoch INVALID_FETCH_SESSION_EPOCH, and a switch
//!   between naming topics by name (below v13) and by id FETCH_SESSION_TOPIC_ID_ERROR.
//!
//! The cache holds `max.incremental.fetch.session.cache.slots` sessions. A new session takes
//! a free slot, else the slot of the least recently used session idle for over two minutes,
//! else that of the session with the fewest partitions if the new one has more; otherwise
//! no session is opened and the consumer keeps fetching in full, as with Kafka.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fjord_engine::{Offset, PartitionOffsets};
use kafka_protocol::messages::FetchRequest;
use uuid::Uuid;

use super::{TOPIC_ID_VERSION_MIN, TopicKey, Wanted};

/// A session idle this long may lose its slot to a new one (Kafka's
/// `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`).
pub(crate) const EVICTION_IDLE: Duration = Duration::from_secs(120);

const FINAL_EPOCH: i32 = -1;
const INITIAL_EPOCH: i32 = 0;

/// How one fetch relates to the session cache.
#[derive(Debug)]
pub(crate) enum Mode {
    /// A full fetch, no session kept.
    Sessionless,
    /// A full fetch that opens a session if a slot can be had.
    Open,
    /// An incremental fetch on session `id`, answered at epoch `epoch`.
    Incremental { id: i32, epoch: i32 },
}

/// One partition of a session, with what the consumer was last told about it.
#[derive(Debug, Clone)]
struct SessionPartition {
    wanted: Wanted,
    /// Offsets last sent (high watermark, last stable offset, log start); `None` until sent.
    sent: Option<(Offset, Offset, Offset)>,
}

#[derive(Debug)]
struct Session {
    /// The epoch the next incremental fetch must carry.
    next_epoch: i32,
    uses_topic_ids: bool,
    last_used: Instant,
    partitions: Vec<SessionPartition>,
}

/// The cache of open sessions.
#[derive(Debug)]
pub(crate) struct FetchSessions {
    slots: usize,
    sessions: Mutex<HashMap<i32, Session>>,
}

impl FetchSessions {
    pub(crate) fn new(slots: usize) -> Self {
        Self {
            slots,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open sessions, for the metrics.
    pub(crate) fn len(&self) -> usize {
        self.sessions().len()
    }

    /// The partitions a fetch reads, in answer order, and how it relates to the cache; or
    /// the top-level error that answers it.
    pub(crate) fn plan(
        &self,
        version: i16,
        request: &FetchRequest,
        requested: Vec<Wanted>,
        now: Instant,
    ) -> Result<(Vec<Wanted>, Mode), i16> {
        if version < 7 {
            return Ok((requested, Mode::Sessionless));
        }
        let (id, epoch) = (request.session_id, request.session_epoch);
        if epoch == FINAL_EPOCH || epoch == INITIAL_EPOCH {
            if id != 0 {
                self.sessions().remove(&id);
            }
            let mode = if epoch == INITIAL_EPOCH {
                Mode::Open
            } else {
                Mode::Sessionless
            };
            return Ok((requested, mode));
        }
        let mut sessions = self.sessions();
        let session = sessions
            .get_mut(&id)
            .ok_or(crate::codes::Refusal::FetchSessionIdNotFound.code())?;
        if epoch != session.next_epoch {
            return Err(crate::codes::Refusal::InvalidFetchSessionEpoch.code());
        }
        if session.uses_topic_ids != (version >= TOPIC_ID_VERSION_MIN) {
            return Err(crate::codes::Refusal::FetchSessionTopicIdError.code());
        }
        session.last_used = now;
        // The epoch is used up now: a second fetch with it, even one running at the same
        // time, is refused rather than answered from a session changed under it.
        session.next_epoch = next_epoch(epoch);
        session.apply(requested, &forgotten(request, version));
        let wanted = session
            .partitions
            .iter()
            .map(|p| p.wanted.clone())
            .collect();
        Ok((wanted, Mode::Incremental { id, epoch }))
    }

    /// After the read: which partitions the answer includes (all of them but in an
    /// incremental fetch), and the session id to answer with. Opens the session of an
    /// opening fetch, and records what an incremental one told the consumer.
    pub(crate) fn finish(
        &self,
        version: i16,
        mode: &Mode,
        wanted: &[Wanted],
        reads: &[Option<PartitionOffsets>],
        has_records: &[bool],
        now: Instant,
    ) -> (i32, Vec<bool>) {
        let sent = |i: usize| {
            reads
                .get(i)
                .copied()
                .flatten()
                .map(|o| (o.high_watermark, o.last_stable_offset, o.log_start_offset))
        };
        match mode {
            Mode::Sessionless => (0, vec![true; wanted.len()]),
            Mode::Open => {
                let partitions = wanted
                    .iter()
                    .enumerate()
                    .map(|(i, w)| SessionPartition {
                        wanted: w.clone(),
                        sent: sent(i),
                    })
                    .collect();
                let session = Session {
                    next_epoch: 1,
                    uses_topic_ids: version >= TOPIC_ID_VERSION_MIN,
                    last_used: now,
                    partitions,
                };
                (self.insert(session, now), vec![true; wanted.len()])
            }
            Mode::Incremental { id, epoch } => {
                let mut sessions = self.sessions();
                let answered = |s: &&mut Session| {
                    s.next_epoch == next_epoch(*epoch) && s.partitions.len() == wanted.len()
                };
                let Some(session) = sessions.get_mut(id).filter(answered) else {
                    // Closed or changed meanwhile: answer in full.
                    return (*id, vec![true; wanted.len()]);
                };
                let include = session
                    .partitions
                    .iter_mut()
                    .enumerate()
                    .map(|(i, partition)| {
                        let now_sent = sent(i);
                        // Errors, records, and offsets the consumer has not seen go out.
                        let has_records = has_records.get(i).copied().unwrap_or(true);
                        let changed =
                            now_sent.is_none() || has_records || partition.sent != now_sent;
                        partition.sent = now_sent;
                        changed
                    })
                    .collect();
                (*id, include)
            }
        }
    }

    /// Stores a new session if a slot can be had; its id, or 0.
    fn insert(&self, session: Session, now: Instant) -> i32 {
        let mut sessions = self.sessions();
        if sessions.len() >= self.slots {
            let Some(evicted) = evictable(&sessions, session.partitions.len(), now) else {
                return 0;
            };
            sessions.remove(&evicted);
        }
        let id = loop {
            let candidate = (Uuid::new_v4().as_u128() as u32 & 0x7fff_ffff) as i32;
            if candidate != 0 && !sessions.contains_key(&candidate) {
                break candidate;
            }
        };
        sessions.insert(id, session);
        id
    }
}

impl Session {
    /// Adds or updates the partitions an incremental fetch names, drops the forgotten ones.
    /// Linear in the session and the request: partitions are found through an index.
    fn apply(&mut self, requested: Vec<Wanted>, forgotten: &[(TopicKey, i32)]) {
        if !forgotten.is_empty() {
            let forgotten: HashSet<&(TopicKey, i32)> = forgotten.iter().collect();
            self.partitions
                .retain(|p| !forgotten.contains(&(p.wanted.topic.clone(), p.wanted.partition)));
        }
        let mut index: HashMap<(TopicKey, i32), usize> = self
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| ((p.wanted.topic.clone(), p.wanted.partition), i))
            .collect();
        for wanted in requested {
            let key = (wanted.topic.clone(), wanted.partition);
            match index.get(&key) {
                Some(&i) => self.partitions[i].wanted = wanted,
                None => {
                    index.insert(key, self.partitions.len());
                    self.partitions
                        .push(SessionPartition { wanted, sent: None });
                }
            }
        }
    }
}

/// The session whose slot a new session of `partitions` partitions may take: the least
/// recently used one idle past [`EVICTION_IDLE`], else the smallest if smaller.
fn evictable(sessions: &HashMap<i32, Session>, partitions: usize, now: Instant) -> Option<i32> {
    let stale = sessions
        .iter()
        .filter(|(_, s)| now.saturating_duration_since(s.last_used) > EVICTION_IDLE)
        .min_by_key(|(_, s)| s.last_used)
        .map(|(id, _)| *id);
    stale.or_else(|| {
        sessions
            .iter()
            .min_by_key(|(_, s)| (s.partitions.len(), s.last_used))
            .filter(|(_, s)| s.partitions.len() < partitions)
            .map(|(id, _)| *id)
    })
}

/// The partitions an incremental fetch asks to forget.
fn forgotten(request: &FetchRequest, version: i16) -> Vec<(TopicKey, i32)> {
    request
        .forgotten_topics_data
        .iter()
        .flat_map(|topic| {
            let key = TopicKey::of(version, &topic.topic, topic.topic_id);
            topic.partitions.iter().map(move |p| (key.clone(), *p))
        })
        .collect()
}

/// Epochs run 1, 2, ... and wrap back to 1 (0 and -1 have meanings of their own).
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX { 1 } else { epoch + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(partitions: i32) -> Vec<Wanted> {
        (0..partitions)
            .map(|partition| Wanted {
                topic: TopicKey {
                    name: kafka_protocol::messages::TopicName::default(),
                    id: Uuid::nil(),
                },
                partition,
                offset: 0,
                max_bytes: 1024,
            })
            .collect()
    }

    fn open(cache: &FetchSessions, partitions: i32, now: Instant) -> i32 {
        let wanted = wanted(partitions);
        let reads = vec![None; wanted.len()];
        let records = vec![false; wanted.len()];
        cache
            .finish(12, &Mode::Open, &wanted, &reads, &records, now)
            .0
    }

    #[test]
    fn a_full_cache_gives_way_to_idle_or_larger_sessions_only() {
        let t0 = Instant::now();
        let cache = FetchSessions::new(2);
        let small = open(&cache, 2, t0);
        let large = open(&cache, 5, t0);
        assert!(small != 0 && large != 0);
        // Full, nothing idle, not larger than the smallest: no session.
        assert_eq!(open(&cache, 2, t0), 0);
        // Larger than the smallest: takes its slot.
        let larger = open(&cache, 3, t0);
        assert_ne!(larger, 0);
        let open_ids: Vec<i32> = cache.sessions().keys().copied().collect();
        assert!(!open_ids.contains(&small) && open_ids.contains(&large));
        // Past two minutes idle, any session gives way, least recently used first.
        let later = t0 + EVICTION_IDLE + Duration::from_secs(1);
        let newcomer = open(&cache, 1, later);
        assert_ne!(newcomer, 0);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn epochs_wrap_past_the_largest() {
        assert_eq!(next_epoch(1), 2);
        assert_eq!(next_epoch(i32::MAX), 1);
    }
}
