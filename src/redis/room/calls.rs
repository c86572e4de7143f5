//! The room's calls: joins (with signed places, and taking a lost place back), polls and peeks,
//! claims, leaving, the operator's controls and the stats.

use std::time::Duration;

use super::RedisWaitingRoom;
use super::reply::{self, Answer};
use crate::backend::BackendError;
use crate::room::{
    ClaimError, Entry, JoinError, LimitsError, Pass, PollError, RoomStats, TicketToken, VisitorId,
    check_limits,
};

impl RedisWaitingRoom {
    /// [`WaitingRoom::join`](crate::WaitingRoom::join): admitted at once if the rate and
    /// `max_active` allow and nobody waits, else a place at the back; a returning visitor gets
    /// the same ticket (checking in) or pass.
    ///
    /// # Errors
    /// [`JoinError::Full`], [`JoinError::Closed`], [`JoinError::Backend`].
    pub async fn join(&self, visitor: VisitorId) -> Result<Entry, JoinError> {
        self.join_at(visitor, None).await.map(|(entry, _)| entry)
    }

    /// [`join`](Self::join), with a signed place text while the visitor waits (when the room
    /// has [`keys`](super::RedisWaitingRoomBuilder::keys)): a client keeps it, and after a
    /// failover that lost its entry, [`rejoin`](Self::rejoin) takes the same place back.
    ///
    /// # Errors
    /// As [`join`](Self::join).
    pub async fn join_with_place(
        &self,
        visitor: VisitorId,
    ) -> Result<(Entry, Option<String>), JoinError> {
        self.join_at(visitor, None).await
    }

    /// Joins with a place text from [`join_with_place`](Self::join_with_place): if the store
    /// knows nothing of that ticket (its entry was lost), the visitor takes its old place in
    /// line; if the ticket is live, this is a refresh; if it ended (lapsed, left, admitted and
    /// finished), or the text is not a valid place of this visitor in this room, or it is older
    /// than [`place_max_age`](super::RedisWaitingRoomBuilder::place_max_age), it is a plain
    /// join. The room remembers the newest ended tickets only; a text issued before the latest
    /// one it forgot (less the nodes' clock skew) is a plain join too, so an ended ticket never
    /// comes back at its old place, however long ago it ended.
    ///
    /// # Errors
    /// As [`join`](Self::join).
    pub async fn rejoin(
        &self,
        visitor: VisitorId,
        place: &str,
    ) -> Result<(Entry, Option<String>), JoinError> {
        let now_s = crate::pass::system_now_unix_s();
        let max_age_s = self.inner.place_max_age.as_secs();
        let old = self.inner.signer.as_ref().and_then(|(keys, room)| {
            let p = keys.verify_place_at(place, now_s, max_age_s).ok()?;
            (p.room == *room && p.visitor == visitor).then_some((
                p.token,
                p.seq,
                p.issued_at_unix_s,
            ))
        });
        self.join_at(visitor, old).await
    }

    async fn join_at(
        &self,
        visitor: VisitorId,
        old: Option<(TicketToken, u64, u64)>,
    ) -> Result<(Entry, Option<String>), JoinError> {
        let token = TicketToken::from_u128(crate::token::random_u128()).to_string();
        let v = visitor.0.to_string();
        let (old_token, old_seq, old_issued) = old.map_or_else(Default::default, |(t, seq, at)| {
            (t.to_string(), seq.to_string(), at.to_string())
        });
        let answer = self
            .inner
            .answer(&["join", &v, &token, &old_token, &old_seq, &old_issued])
            .await
            .map_err(JoinError::Backend)?;
        match answer {
            Answer::Entry(entry, seq) => {
                let place = match (&self.inner.signer, entry, seq) {
                    (Some((keys, room)), Entry::Waiting(t), Some(seq)) => {
                        Some(keys.sign_place(*room, visitor, t.token, seq))
                    }
                    _ => None,
                };
                Ok((entry, place))
            }
            Answer::Refused(reason, retry_us) => Err(match reason.as_str() {
                "closed" => JoinError::Closed,
                "full" => JoinError::Full {
                    retry_after: Duration::from_micros(retry_us.max(1)),
                },
                _ => JoinError::Backend(BackendError::Reply),
            }),
            _ => Err(JoinError::Backend(BackendError::Reply)),
        }
    }

    /// [`WaitingRoom::entry_of`](crate::WaitingRoom::entry_of): a visitor's ticket (checking
    /// in) or pass, without adding anyone.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn entry_of(&self, visitor: VisitorId) -> Result<Option<Entry>, BackendError> {
        let v = visitor.0.to_string();
        match self.inner.answer(&["entry_of", &v]).await? {
            Answer::Entry(entry, _) => Ok(Some(entry)),
            Answer::Absent => Ok(None),
            _ => Err(BackendError::Reply),
        }
    }

    async fn token_call(&self, op: &str, token: TicketToken) -> Result<Answer, BackendError> {
        self.inner.answer(&[op, &token.to_string()]).await
    }

    /// A poll or a peek.
    async fn look(&self, op: &str, token: TicketToken) -> Result<Entry, PollError> {
        match self
            .token_call(op, token)
            .await
            .map_err(PollError::Backend)?
        {
            Answer::Entry(entry, _) => Ok(entry),
            Answer::Refused(reason, _) => Err(reply::poll_error(&reason)),
            _ => Err(PollError::Backend(BackendError::Reply)),
        }
    }

    /// [`WaitingRoom::poll`](crate::WaitingRoom::poll): where the ticket stands; a check-in.
    ///
    /// # Errors
    /// [`PollError::UnknownToken`], [`PollError::Expired`], [`PollError::Backend`].
    pub async fn poll(&self, token: TicketToken) -> Result<Entry, PollError> {
        self.look("poll", token).await
    }

    /// [`WaitingRoom::peek`](crate::WaitingRoom::peek): where the ticket stands, without
    /// checking in (for operators and dashboards; a visitor's own client polls).
    ///
    /// # Errors
    /// [`PollError::UnknownToken`], [`PollError::Expired`], [`PollError::Backend`].
    pub async fn peek(&self, token: TicketToken) -> Result<Entry, PollError> {
        self.look("peek", token).await
    }

    /// [`WaitingRoom::claim`](crate::WaitingRoom::claim): the pass's first use; claiming again
    /// returns the same pass.
    ///
    /// # Errors
    /// [`ClaimError::NotAdmitted`], [`ClaimError::UnknownToken`], [`ClaimError::Expired`],
    /// [`ClaimError::Backend`].
    pub async fn claim(&self, token: TicketToken) -> Result<Pass, ClaimError> {
        match self
            .token_call("claim", token)
            .await
            .map_err(ClaimError::Backend)?
        {
            Answer::Entry(Entry::Admitted(pass), _) => Ok(pass),
            Answer::Refused(reason, _) => Err(match reason.as_str() {
                "not_admitted" => ClaimError::NotAdmitted,
                "expired" => ClaimError::Expired,
                "unknown" => ClaimError::UnknownToken,
                _ => ClaimError::Backend(BackendError::Reply),
            }),
            _ => Err(ClaimError::Backend(BackendError::Reply)),
        }
    }

    /// [`WaitingRoom::finish`](crate::WaitingRoom::finish): ends a pass, or leaves the line.
    ///
    /// # Errors
    /// [`PollError::UnknownToken`], [`PollError::Expired`], [`PollError::Backend`].
    pub async fn finish(&self, token: TicketToken) -> Result<(), PollError> {
        match self
            .token_call("finish", token)
            .await
            .map_err(PollError::Backend)?
        {
            Answer::Done => Ok(()),
            Answer::Refused(reason, _) => Err(reply::poll_error(&reason)),
            _ => Err(PollError::Backend(BackendError::Reply)),
        }
    }

    /// Writes settings (field, value pairs) for every node.
    async fn set(&self, pairs: &[&str]) -> Result<(), BackendError> {
        let mut args = vec!["set"];
        args.extend_from_slice(pairs);
        match self.inner.answer(&args).await? {
            Answer::Done => Ok(()),
            _ => Err(BackendError::Reply),
        }
    }

    /// Stops admitting (the line keeps its order and keeps growing), for every node.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn pause(&self) -> Result<(), BackendError> {
        self.set(&["paused", "1"]).await
    }

    /// Admits again.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn resume(&self) -> Result<(), BackendError> {
        self.set(&["paused", "0"]).await
    }

    /// Refuses newcomers (`JoinError::Closed`); those in line keep their places.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn close(&self) -> Result<(), BackendError> {
        self.set(&["closed", "1"]).await
    }

    /// Takes newcomers again.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn reopen(&self) -> Result<(), BackendError> {
        self.set(&["closed", "0"]).await
    }

    /// Changes the rate, the burst and `max_active` together, for every node: checked first by
    /// the in-process room's rules, and nothing changes on an error.
    ///
    /// # Errors
    /// [`LimitsError::Config`] for a value out of range, [`LimitsError::Backend`].
    pub async fn set_limits(
        &self,
        rate_per_second: u32,
        burst: u32,
        max_active: u32,
    ) -> Result<(), LimitsError> {
        check_limits(rate_per_second, burst, max_active).map_err(LimitsError::Config)?;
        let (rate, burst, max_active) = (
            rate_per_second.to_string(),
            burst.to_string(),
            max_active.to_string(),
        );
        let pairs = ["rate", &rate, "burst", &burst, "max_active", &max_active];
        self.set(&pairs).await.map_err(LimitsError::Backend)
    }

    /// Counts and settings, as of the server's now: the in-process room's [`RoomStats`], with
    /// what a shared room keeps (nothing pre-queued, no scheduled opening; the back of the
    /// line's ETA by the rate alone).
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn stats(&self) -> Result<RoomStats, BackendError> {
        reply::stats(&self.inner.call(&["stats"]).await?)
    }

    /// Visitors in line, as of the server's now.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn waiting(&self) -> Result<u64, BackendError> {
        reply::waiting(&self.inner.call(&["waiting"]).await?)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use super::RedisWaitingRoom;
    use crate::backend::BackendError;

    /// A redis-server on a free loopback port, killed when dropped (also when a test fails).
    struct Server(Child, u16, std::path::PathBuf);

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
            let _ = std::fs::remove_dir_all(&self.2);
        }
    }

    /// Starts a server, or `None` (after a loud notice) when redis-server is missing outside
    /// CI; under `CI=true` a missing server is a failure.
    fn server() -> Option<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir = std::env::temp_dir().join(format!("surgegate-set-op-{port}"));
        let _ = std::fs::create_dir_all(&dir);
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn();
        match child {
            Ok(child) => Some(Server(child, port, dir)),
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("redis-server is needed under CI=true: {e}")
            }
            Err(e) => {
                eprintln!("\n*** SKIPPED: redis-server could not start ({e}) ***\n");
                None
            }
        }
    }

    async fn connect(port: u16) -> RedisWaitingRoom {
        let url = format!("redis://127.0.0.1:{port}");
        for _ in 0..100 {
            if let Ok(room) = RedisWaitingRoom::builder()
                .namespace("set-op")
                .connect(&[url.as_str()])
                .await
            {
                return room;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the redis-server on {port} never answered");
    }

    #[test]
    fn the_set_op_writes_only_known_settings_and_nothing_on_an_error() {
        let Some(server) = server() else {
            return;
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let room = connect(server.1).await;
            let before = room.stats().await.unwrap();
            for bad in [
                &["rate", "7", "max_waiting", "1"][..],
                &["checkin_us", "1"],
                &["rate", "0"],
                &["burst", "-3"],
                &["max_active", "12345678901"],
                &["paused", "2"],
                &["closed", "yes"],
                &["rate"],
                &[],
            ] {
                assert_eq!(room.set(bad).await, Err(BackendError::Reply), "{bad:?}");
                assert_eq!(
                    room.stats().await.unwrap(),
                    before,
                    "{bad:?} wrote something"
                );
            }
            room.set(&["rate", "7", "paused", "1"]).await.unwrap();
            let after = room.stats().await.unwrap();
            assert_eq!((after.rate_per_second, after.paused), (7, true));
            assert_eq!(after.max_waiting, before.max_waiting);
        });
    }
}
