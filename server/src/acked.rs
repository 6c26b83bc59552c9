//! Snapshots against acknowledged baselines, for the datagram transport (issue 14): over UDP
//! a snapshot may be lost, so a client's baseline is the newest snapshot it *acknowledged*,
//! not the last one written. The match keeps a ring of its recent worlds; each tick it
//! encodes the new world once per distinct baseline its clients acknowledged (with no loss
//! they all acknowledged the previous tick: one encode, as over TCP), and in full for clients
//! whose baseline left the ring or who never acknowledged one. Sans-IO: no socket, no clock.
//! Used by the match's datagram players (`r#match::datagrams`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use skirmish_shared::codec::SharedDelta;
use skirmish_shared::rules::Params;
use skirmish_shared::tick::Tick;
use skirmish_shared::world::WorldState;

/// The match's recent worlds, oldest first, each with its tick beside it (finding a
/// player's baseline reads no world: these rings are per player, and their worlds are cold
/// by the next tick).
#[derive(Debug, Clone)]
pub struct WorldRing {
    worlds: VecDeque<(Tick, Arc<WorldState>)>,
    capacity: usize,
}

impl WorldRing {
    /// Keeps the newest `capacity` worlds (about a second: the tick rate).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            worlds: VecDeque::with_capacity(capacity.max(1)),
            capacity: capacity.max(1),
        }
    }

    pub fn push(&mut self, world: Arc<WorldState>) {
        if self.worlds.len() == self.capacity {
            self.worlds.pop_front();
        }
        self.worlds.push_back((world.tick, world));
    }

    /// Lets go of the worlds before `tick`. A player's ring, once it acknowledged `tick`:
    /// acknowledgements move forward, so the older worlds can no longer be its baseline
    /// (and held until they fall out, they spread a player's state over the heap).
    pub fn drop_before(&mut self, tick: Tick) {
        while self.worlds.front().is_some_and(|(t, _)| tick.is_after(*t)) {
            self.worlds.pop_front();
        }
    }

    #[must_use]
    pub fn newest(&self) -> Option<&Arc<WorldState>> {
        self.worlds.back().map(|(_, w)| w)
    }

    /// The world of `tick`, if it is still in the ring.
    #[must_use]
    pub fn get(&self, tick: Tick) -> Option<&Arc<WorldState>> {
        let newest = self.worlds.back()?.0;
        let age = usize::try_from(newest.diff(tick)).ok()?;
        let i = self.worlds.len().checked_sub(1 + age)?;
        self.worlds
            .get(i)
            .filter(|(t, _)| *t == tick)
            .map(|(_, w)| w)
    }
}

/// One tick's encodings, one per baseline asked for (see the module docs). Each is a
/// [`SharedDelta`]: the bytes a client holding the match's world gets, and the entries a
/// client holding its own view (interest management) copies from.
#[derive(Debug)]
pub struct TickEncodings<'a> {
    ring: &'a WorldRing,
    params: Params,
    checksum: Option<u32>,
    cache: HashMap<Option<Tick>, Arc<SharedDelta>>,
    /// Encodings against a baseline other than the tick before.
    extra: usize,
}

impl<'a> TickEncodings<'a> {
    /// Encodings of `ring`'s newest world; `checksum` goes into every delta (full snapshots
    /// always carry one). `coded`: the newest world's delta the match coded already (against
    /// the tick before, with the same checksum), if any.
    #[must_use]
    pub fn new(
        ring: &'a WorldRing,
        params: Params,
        checksum: Option<u32>,
        coded: Option<Arc<SharedDelta>>,
    ) -> Self {
        Self {
            ring,
            params,
            checksum,
            cache: coded.map(|d| (d.base, d)).into_iter().collect(),
            extra: 0,
        }
    }

    /// The snapshot for a client whose newest acknowledged tick is `acked`: the baseline it
    /// is coded against (`None`: in full) and the encoding, shared with every client of the
    /// same baseline. `None` when the ring is empty.
    pub fn for_client(&mut self, acked: Option<Tick>) -> Option<(Option<Tick>, Arc<SharedDelta>)> {
        let newest = self.ring.newest()?;
        let baseline = acked
            .filter(|t| newest.tick.is_after(*t))
            .and_then(|t| self.ring.get(t));
        let key = baseline.map(|b| b.tick);
        // A full snapshot always carries the checksum (as over WebSocket): it starts a stream.
        let checksum = match key {
            None => Some(self.checksum.unwrap_or_else(|| newest.checksum())),
            Some(_) => self.checksum,
        };
        let (params, extra) = (self.params, &mut self.extra);
        let previous = newest.tick.minus(1);
        let delta = self
            .cache
            .entry(key)
            .or_insert_with(|| {
                *extra += usize::from(key != Some(previous));
                Arc::new(SharedDelta::encode(
                    baseline.map(AsRef::as_ref),
                    newest,
                    checksum,
                    &params,
                ))
            })
            .clone();
        Some((key, delta))
    }

    /// How many encodings this tick took beyond the one against the tick before (which every
    /// client uses when nothing is lost): one per other baseline asked for.
    #[must_use]
    pub fn extra_encodes(&self) -> usize {
        self.extra
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skirmish_shared::codec;
    use skirmish_shared::workload::Wander;

    fn ring_of(ticks: usize, capacity: usize) -> (WorldRing, Vec<Arc<WorldState>>, Params) {
        let params = Params::new(30);
        let worlds: Vec<Arc<WorldState>> = Wander::new(16, 3, params)
            .worlds(ticks)
            .into_iter()
            .map(Arc::new)
            .collect();
        let mut ring = WorldRing::new(capacity);
        for w in &worlds {
            ring.push(w.clone());
        }
        (ring, worlds, params)
    }

    #[test]
    fn worlds_before_an_acknowledgement_are_let_go_and_the_rest_kept() {
        let (mut ring, worlds, _) = ring_of(40, 30);
        let acked = worlds[35].tick;
        ring.drop_before(acked);
        assert!(
            ring.get(worlds[34].tick).is_none(),
            "older than the ack: gone"
        );
        for w in &worlds[35..] {
            assert!(ring.get(w.tick).is_some_and(|r| Arc::ptr_eq(r, w)));
        }
        ring.drop_before(worlds[20].tick);
        assert!(ring.get(acked).is_some(), "an older tick lets nothing go");
    }

    #[test]
    fn with_no_loss_every_client_shares_one_encoding() {
        let (ring, worlds, params) = ring_of(40, 30);
        let prev = worlds[worlds.len() - 2].tick;
        let mut enc = TickEncodings::new(&ring, params, None, None);
        let first = enc.for_client(Some(prev)).expect("encoded");
        for _ in 0..99 {
            let again = enc.for_client(Some(prev)).expect("encoded");
            assert!(
                Arc::ptr_eq(&first.1, &again.1),
                "the same bytes, not a copy"
            );
        }
        assert_eq!(
            enc.extra_encodes(),
            0,
            "only the delta against the tick before"
        );
    }

    #[test]
    fn the_delta_the_match_coded_already_is_not_coded_again() {
        let (ring, worlds, params) = ring_of(40, 30);
        let (prev, newest) = (&worlds[38], &worlds[39]);
        let coded = Arc::new(SharedDelta::encode(Some(prev), newest, None, &params));
        let mut enc = TickEncodings::new(&ring, params, None, Some(coded.clone()));
        let (baseline, got) = enc.for_client(Some(prev.tick)).expect("encoded");
        assert_eq!(baseline, Some(prev.tick));
        assert!(Arc::ptr_eq(&got, &coded), "the match's own delta, shared");
        assert_eq!(enc.extra_encodes(), 0);
    }

    #[test]
    fn each_client_decodes_the_newest_world_from_its_own_baseline() {
        let (ring, worlds, params) = ring_of(40, 30);
        let newest = worlds.last().expect("worlds").clone();
        let mut enc = TickEncodings::new(&ring, params, Some(newest.checksum()), None);
        // Lost snapshots: clients acknowledged different ticks; one never did; one acked a
        // tick that left the ring; one acked the newest tick itself.
        let acks = [
            Some(worlds[38].tick),
            Some(worlds[35].tick),
            Some(worlds[35].tick),
            None,
            Some(worlds[2].tick),
            Some(newest.tick),
        ];
        for acked in acks {
            let (baseline, bytes) = enc.for_client(acked).expect("encoded");
            let base = baseline.and_then(|t| worlds.iter().find(|w| w.tick == t));
            let decoded =
                codec::decode(base.map(AsRef::as_ref), newest.tick, &bytes.bytes, &params)
                    .expect("decodes");
            assert_eq!(&decoded.world, newest.as_ref());
            assert_eq!(decoded.verify(), Some(true));
        }
        // 38 (the tick before), and beyond it 35 and full (for None, the tick out of the
        // ring, and the newest tick).
        assert_eq!(enc.extra_encodes(), 2);
    }

    #[test]
    fn the_ring_keeps_about_a_second() {
        let (ring, worlds, _) = ring_of(40, 30);
        assert!(ring.get(worlds[9].tick).is_none(), "dropped");
        assert_eq!(
            ring.get(worlds[10].tick).map(|w| w.tick),
            Some(worlds[10].tick)
        );
        assert_eq!(ring.newest().map(|w| w.tick), Some(worlds[39].tick));
    }
}
