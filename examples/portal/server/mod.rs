//! The portal: its state, its routes, and what every response carries.
//!
//! `/` and `/booking/{token}` are open; `/register` and `/appointments…` are gated by the
//! waiting room's layer; `/admin/…` needs the admin token; `/metrics` needs the metrics token
//! (or is served, alone, on a separate address).
//!
//! The handlers are written once against `BookBackend` and `RoomBackend`: [`State::open`] puts
//! the book and the room in this process, [`State::open_shared`] on Redis, and the same router
//! serves either. What only a book in this process has (its journal's counters, its checkpoint
//! at shutdown) is given to the state by `open` and used by `main`, never asked of a backend.

pub mod admin;
pub mod answer;
pub mod appointments;
pub mod booking;
pub mod csrf;
pub mod html;
pub mod metrics;
pub mod quotas;
pub mod register;
pub mod registry;
pub mod registry_redis;
pub mod standby;
pub mod text;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use surgegate::calendar::{Calendar, Date};
use surgegate::http::WaitingRoomLayer;
use surgegate::pass::{KeyId, Keyring};
use surgegate::redis::{RedisSlotBook, RedisWaitingRoom};
use surgegate::{
    BookBackend, BranchId, JournalStats, RoomBackend, SlotBook, SlotIndex, WaitingRoom,
};

/// Everything the portal is started with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub rate_per_second: u32,
    pub burst: u32,
    pub max_active: u32,
    pub max_waiting: u32,
    pub checkin_timeout: Duration,
    pub pass_ttl: Duration,
    /// Zero: claims off.
    pub claim_timeout: Duration,
    pub hold_ttl: Duration,
    pub data_dir: PathBuf,
    pub admin_token: AdminToken,
    pub branches: u32,
    pub days: u32,
    pub windows_per_day: u32,
    /// Capacity of every window of every branch in a new book (an admin's plan replaces it).
    pub default_capacity: u32,
    /// New visitor identities a minute from one client address (0: no limit).
    pub new_visitors_per_minute: u32,
    /// The portal's own proxies (CIDRs), whose `X-Forwarded-For`/`-Proto` are believed.
    pub trusted_proxies: Vec<String>,
    /// The portal is served over HTTPS (secure, host-prefixed cookies only).
    pub https: bool,
    /// Signs passes, visitor cookies and CSRF tokens; at least 32 bytes.
    pub secret: Vec<u8>,
    /// The name of that key in what it signs (`PORTAL_KEY_ID`), so keys can be rotated.
    pub key_id: u32,
    /// The bearer token `/metrics` answers to on the portal's own address (`None`: it answers
    /// nobody there; a `--metrics-listen` address serves it without one).
    pub metrics_token: Option<AdminToken>,
}

pub use registry::Registration;

/// The operator's bearer token for `/admin/…`: at least [`AdminToken::MIN_CHARS`] characters,
/// so an empty or guessable one is refused at start. `Debug` never shows it.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    /// The shortest token accepted, in characters.
    pub const MIN_CHARS: usize = 32;

    /// The token, if it is long enough and holds no whitespace or control characters.
    pub fn new(text: String) -> Result<Self, String> {
        if text.chars().count() < Self::MIN_CHARS {
            return Err(format!(
                "the token has {} characters; give at least {} (e.g. `openssl rand -hex 32`)",
                text.chars().count(),
                Self::MIN_CHARS
            ));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("the token holds whitespace; give one word of printable characters".into());
        }
        Ok(Self(text))
    }

    /// Whether `given` is this token (a digest of each, compared in constant time). An empty
    /// `given` never matches.
    pub fn matches(&self, given: &str) -> bool {
        use sha2::Digest as _;
        use subtle::ConstantTimeEq as _;
        let expected = sha2::Sha256::digest(self.0.as_bytes());
        let given_digest = sha2::Sha256::digest(given.as_bytes());
        !given.is_empty() && bool::from(expected.ct_eq(&given_digest))
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// Counts the portal keeps of its own work (the room and book keep theirs).
#[derive(Default)]
pub struct Counters {
    pub registrations: AtomicU64,
    pub holds: AtomicU64,
    pub bookings: AtomicU64,
    pub cancellations: AtomicU64,
}

/// What the portal keeps whatever its backends: settings, calendar, registrations, counters
/// and the form tokens' key. [`State`] derefs to it.
pub struct Portal {
    pub calendar: Calendar,
    pub settings: Settings,
    /// Who registered as whom: in the data directory, or on Redis for many nodes.
    pub registry: Box<dyn registry::Registrations>,
    pub counters: Counters,
    /// Signs and checks the form tokens (see [`csrf`]).
    forms: Keyring,
    /// The room's statistics as last read, for `/` and `/metrics` (see [`State::room_view`]).
    view: parking_lot::Mutex<Option<(std::time::Instant, surgegate::RoomStats)>>,
    /// Whether a request is reading the room for the view now (the others use the last one).
    view_refreshing: std::sync::atomic::AtomicBool,
    /// How many times the view was read from the room.
    pub view_reads: AtomicU64,
}

/// The oldest room view `/` and `/metrics` show.
pub const ROOM_VIEW_MAX_AGE: Duration = Duration::from_secs(1);

/// The journal's counters of a book in this process, for the admin page and the metrics.
pub type JournalReader = Box<dyn Fn() -> JournalStats + Send + Sync>;

/// The portal's shared state: the book, the room and the layer in front of it, on any backend.
pub struct State<B, R> {
    pub book: B,
    pub room: R,
    pub layer: WaitingRoomLayer<R>,
    /// The journal's counters, when the book has a journal (a durable book in this process).
    pub journal: Option<JournalReader>,
    pub portal: Portal,
}

impl<B, R> std::ops::Deref for State<B, R> {
    type Target = Portal;

    fn deref(&self) -> &Portal {
        &self.portal
    }
}

/// The portal on one machine: a durable book and a room in this process.
pub type LocalState = State<Arc<SlotBook>, Arc<WaitingRoom>>;
/// The portal on Redis: every node shares the line and the book.
pub type SharedState = State<RedisSlotBook, RedisWaitingRoom>;

impl State<Arc<SlotBook>, Arc<WaitingRoom>> {
    /// Opens the book in `settings.data_dir` (creating it and its calendar if new), builds the
    /// room and the layer.
    pub fn open(settings: Settings) -> Result<Arc<LocalState>, String> {
        std::fs::create_dir_all(&settings.data_dir)
            .map_err(|e| format!("cannot create {}: {e}", settings.data_dir.display()))?;
        let calendar = calendar_in(&settings.data_dir, settings.days, settings.windows_per_day)?;
        let book = SlotBook::builder()
            .hold_ttl(settings.hold_ttl)
            .max_active_per_applicant(1)
            .max_branches(settings.branches.max(1))
            .max_slots_per_branch(calendar.slots())
            .open(&settings.data_dir)
            .map_err(|e| {
                format!(
                    "cannot open the book in {}: {e}",
                    settings.data_dir.display()
                )
            })?;
        if book.journal_stats().is_some_and(|s| s.recovery.slots == 0) {
            default_plan(&book, &settings, &calendar)?;
        }
        let mut room = WaitingRoom::builder()
            .rate_per_second(settings.rate_per_second)
            .burst(settings.burst)
            .max_active(settings.max_active)
            .max_waiting(settings.max_waiting)
            .checkin_timeout(settings.checkin_timeout)
            .pass_ttl(settings.pass_ttl);
        if !settings.claim_timeout.is_zero() {
            room = room.claim_timeout(settings.claim_timeout);
        }
        let room = Arc::new(room.try_build().map_err(|e| e.to_string())?);
        let book = Arc::new(book);
        let journal = book.clone();
        let journal: JournalReader = Box::new(move || journal.journal_stats().unwrap_or_default());
        let registry = Box::new(registry::SqliteRegistrations::open(&settings.data_dir)?);
        State::assemble(settings, calendar, (book, room, registry), Some(journal))
    }
}

impl State<RedisSlotBook, RedisWaitingRoom> {
    /// The portal on Redis (`--redis`): every node started with the same URLs, namespace and
    /// secret shares one line and one book. The calendar is still read from (or started in)
    /// `settings.data_dir`: give every node the same one. Registrations are on Redis as well.
    pub async fn open_shared(
        settings: Settings,
        urls: &[String],
        namespace: &str,
    ) -> Result<Arc<SharedState>, String> {
        std::fs::create_dir_all(&settings.data_dir)
            .map_err(|e| format!("cannot create {}: {e}", settings.data_dir.display()))?;
        let calendar = calendar_in(&settings.data_dir, settings.days, settings.windows_per_day)?;
        let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
        let book = RedisSlotBook::builder()
            .hold_ttl(settings.hold_ttl)
            .max_active_per_applicant(1)
            .namespace(namespace)
            .connect(&urls)
            .await
            .map_err(|e| e.to_string())?;
        // The first node writes the default plan; the others find the slots open.
        if book
            .availability(BranchId(1), 0..1)
            .await
            .map_err(|e| e.to_string())?
            .is_empty()
        {
            for branch in 1..=settings.branches {
                for slot in 0..calendar.slots() {
                    book.set_capacity(BranchId(branch), slot, settings.default_capacity)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        let mut room = RedisWaitingRoom::builder()
            .rate_per_second(settings.rate_per_second)
            .burst(settings.burst)
            .max_active(settings.max_active)
            .max_waiting(settings.max_waiting)
            .checkin_timeout(settings.checkin_timeout)
            .pass_ttl(settings.pass_ttl)
            .namespace(namespace);
        if !settings.claim_timeout.is_zero() {
            room = room.claim_timeout(settings.claim_timeout);
        }
        let room = room.connect(&urls).await.map_err(|e| e.to_string())?;
        let registry =
            Box::new(registry_redis::RedisRegistrations::connect(&urls, namespace).await?);
        State::assemble(settings, calendar, (book, room, registry), None)
    }
}

impl<B: BookBackend, R: RoomBackend + Clone> State<B, R> {
    fn assemble(
        settings: Settings,
        calendar: Calendar,
        (book, room, registry): (B, R, Box<dyn registry::Registrations>),
        journal: Option<JournalReader>,
    ) -> Result<Arc<Self>, String> {
        let keys =
            Keyring::new(KeyId(settings.key_id), &settings.secret).map_err(|e| e.to_string())?;
        let forms = keys.clone();
        let mut layer = WaitingRoomLayer::builder(room.clone(), keys)
            .peer_address(|parts| {
                let info = parts.extensions.get::<ConnectInfo<SocketAddr>>()?;
                Some(info.0.ip())
            })
            .trusted_proxies(settings.trusted_proxies.clone())
            .served_over_https(settings.https);
        if settings.new_visitors_per_minute > 0 {
            layer = layer.limit_new_visitors_per_client(settings.new_visitors_per_minute);
        }
        let layer = layer.build().map_err(|e| e.to_string())?;
        Ok(Arc::new(State {
            book,
            room,
            layer,
            journal,
            portal: Portal {
                calendar,
                registry,
                counters: Counters::default(),
                forms,
                view: parking_lot::Mutex::new(None),
                view_refreshing: std::sync::atomic::AtomicBool::new(false),
                view_reads: AtomicU64::new(0),
                settings,
            },
        }))
    }
}

impl<B: BookBackend, R: RoomBackend> State<B, R> {
    /// The room's statistics, at most [`ROOM_VIEW_MAX_AGE`] old: a surge on the landing page
    /// or the metrics reads the room about once a second, not once a request (a reading of the
    /// in-process room takes its lock; on Redis it runs a script). While one request reads it
    /// afresh, the others answer with the last view. `None` only before the first reading or
    /// when the room cannot be read.
    ///
    /// # Cancel safety
    /// Cancel-safe: a reading dropped midway leaves the last view, and the next call reads
    /// again.
    pub async fn room_view(&self) -> Option<surgegate::RoomStats> {
        use std::sync::atomic::Ordering;
        let last = *self.view.lock();
        if let Some((at, stats)) = last
            && at.elapsed() < ROOM_VIEW_MAX_AGE
        {
            return Some(stats);
        }
        // Acquire/Release: the flag hands the view from one refresher to the next.
        if self.view_refreshing.swap(true, Ordering::Acquire) {
            return last.map(|(_, stats)| stats);
        }
        // Cancel safety: the guard clears the flag however this future ends.
        let _refreshing = Refreshing(&self.view_refreshing);
        self.view_reads.fetch_add(1, Ordering::Relaxed);
        let fresh = self.room.stats().await.ok();
        if let Some(stats) = fresh {
            *self.view.lock() = Some((std::time::Instant::now(), stats));
        }
        fresh.or(last.map(|(_, stats)| stats))
    }
}

/// Clears the view's "being read" flag when dropped.
struct Refreshing<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for Refreshing<'_> {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
}

impl Portal {
    /// The first slot that can still be booked: the first window of tomorrow (UTC), so that
    /// nobody books a window that has begun or passed.
    pub fn first_bookable_slot(&self) -> SlotIndex {
        let first = self.calendar.first_day().days_since_unix_epoch();
        let today = today_utc().map_or(first, |d| d.days_since_unix_epoch());
        let days_in = (today + 1 - first).max(0) as u64;
        (days_in * u64::from(self.calendar.windows_per_day())).min(u64::from(self.calendar.slots()))
            as SlotIndex
    }

    /// The slots open for booking now.
    pub fn bookable(&self) -> std::ops::Range<SlotIndex> {
        self.first_bookable_slot()..self.calendar.slots()
    }

    /// The branches the portal offers: 1 to `branches`.
    pub fn branch_ids(&self) -> impl Iterator<Item = BranchId> {
        (1..=self.settings.branches).map(BranchId)
    }
}

/// The calendar of a data directory: read from `calendar.txt`, or started today and written
/// there, so that slot numbers mean the same days after a restart.
fn calendar_in(dir: &Path, days: u32, windows: u32) -> Result<Calendar, String> {
    let path = dir.join("calendar.txt");
    // Checked before a new calendar is written, and again on one read back: a day of more
    // one-hour windows would overlap the next day's, which the pages and the quota timer
    // cannot tell apart.
    let too_many = |windows: u32| {
        format!(
            "{windows} windows a day do not fit: one-hour windows from 08:00 allow 1 to {}",
            quotas::MAX_WINDOWS_PER_DAY
        )
    };
    if windows > quotas::MAX_WINDOWS_PER_DAY {
        return Err(too_many(windows));
    }
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let today = today_utc()?;
            let text = format!("{today} {days} {windows}\n");
            std::fs::write(&path, &text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            text
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let bad = || format!("{} is not 'YYYY-MM-DD days windows'", path.display());
    let mut words = text.split_whitespace();
    let first: Date = words.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let days: u32 = words.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let windows: u32 = words.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    if windows > quotas::MAX_WINDOWS_PER_DAY {
        return Err(format!("{}: {}", path.display(), too_many(windows)));
    }
    Calendar::new(first, days, windows).map_err(|e| format!("{}: {e}", path.display()))
}

fn today_utc() -> Result<Date, String> {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    Date::from_days_since_unix_epoch((since.as_secs() / 86_400) as i64).map_err(|e| e.to_string())
}

/// Every window of every branch at the default capacity, for a new book.
fn default_plan(book: &SlotBook, settings: &Settings, calendar: &Calendar) -> Result<(), String> {
    if settings.default_capacity == 0 {
        return Ok(());
    }
    for branch in 1..=settings.branches {
        for slot in 0..calendar.slots() {
            book.set_capacity(BranchId(branch), slot, settings.default_capacity)
                .map_err(|e| format!("default plan: {e}"))?;
        }
    }
    Ok(())
}

/// The portal's routes, on any backend.
pub fn router<B: BookBackend, R: RoomBackend>(state: Arc<State<B, R>>) -> Router {
    let gated = Router::new()
        .route(
            "/register",
            get(register::form::<B, R>).post(register::submit::<B, R>),
        )
        .route("/appointments", get(appointments::choose::<B, R>))
        .route(
            "/appointments/hold",
            get(appointments::show_hold::<B, R>).post(appointments::hold::<B, R>),
        )
        .route("/appointments/confirm", post(appointments::confirm::<B, R>))
        .route("/appointments/release", post(appointments::release::<B, R>))
        .route("/appointments/standby", post(standby::join::<B, R>))
        .route("/appointments/standby/leave", post(standby::leave::<B, R>))
        // Answered by the layer itself.
        .route("/surgegate/leave", post(|| async { "" }))
        .layer(state.layer.clone());
    Router::new()
        .route("/", get(landing::<B, R>))
        .route("/booking/{token}", get(booking::show::<B, R>))
        .route("/booking/{token}/cancel", post(booking::cancel::<B, R>))
        .route("/static/countdown.js", get(countdown_js))
        .route("/metrics", get(metrics::guarded::<B, R>))
        .nest("/admin", admin::router(state.clone()))
        .merge(gated)
        .layer(middleware::from_fn(security_headers))
        // Outermost: the language is chosen before the waiting room's layer reads it.
        .layer(middleware::from_fn(text::choose_language))
        .with_state(state)
}

/// The routes of a separate metrics address (`--metrics-listen`): `/metrics` only, without a
/// token (that address is the operator's to keep private).
pub fn metrics_router<B: BookBackend, R: RoomBackend>(state: Arc<State<B, R>>) -> Router {
    Router::new()
        .route("/metrics", get(metrics::render::<B, R>))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn landing<B: BookBackend, R: RoomBackend>(
    axum::extract::State(state): axum::extract::State<Arc<State<B, R>>>,
    axum::Extension(lang): axum::Extension<text::Lang>,
) -> Html<String> {
    let waiting = lang.num(state.room_view().await.map_or(0, |s| s.waiting));
    let branches = lang.num(state.settings.branches);
    let today = today_utc().map_or(String::new(), |d| lang.long_date(d));
    let body = match lang {
        text::Lang::Arabic => format!(
            "<h1>مواعيد تصاريح الإقامة</h1><p class=\"muted\" id=\"today\">{today}</p>\
             <p>سجّل مرة واحدة، ثم احجز موعدًا في أحد فروعنا، وعددها {branches}.</p>\
             <p>عندما يصل كثيرون في وقت واحد ستنتظر في قائمة عادلة: مكانك محفوظ، والصفحة \
             تخبرك حين يحين دورك، ويمكنك إغلاقها والعودة إليها.</p>\
             <p><a href=\"/register\"><button>التسجيل</button></a></p>\
             <p class=\"muted\">عدد المنتظرين الآن: {waiting}.</p>"
        ),
        text::Lang::English => format!(
            "<h1>Residence permit appointments</h1><p class=\"muted\" id=\"today\">{today}</p>\
             <p>Register once, then book an appointment at one of {branches} branches.</p>\
             <p>When many people arrive at once you will wait in a fair line: your place is kept, \
             the page tells you when it is your turn, and you may close it and come back.</p>\
             <p><a href=\"/register\"><button>Register</button></a></p>\
             <p class=\"muted\">{waiting} people waiting now.</p>"
        ),
    };
    Html(html::page(lang, lang.say(text::SERVICE), &body, ""))
}

/// The hold page's countdown: progressive enhancement (the page shows the time without it).
/// It writes the page's digits (`data-digits="arab"`) and its word for a lapsed hold
/// (`data-expired`).
async fn countdown_js() -> impl IntoResponse {
    const SCRIPT: &str = "for(const el of document.querySelectorAll('[data-expires-in]')){\
        let left=Number(el.dataset.expiresIn);const arab=el.dataset.digits==='arab';\
        const digits=t=>arab?t.replace(/[0-9]/g,d=>String.fromCharCode(0x660+Number(d))):t;\
        const tick=()=>{const m=Math.floor(left/60),s=left%60;\
        el.textContent=digits(m+':'+String(s).padStart(2,'0'));if(left>0){left--;\
        setTimeout(tick,1000);}else{el.textContent=el.dataset.expired||'0:00';}};tick();}";
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

/// The security headers of every response (the layer's own pages set stricter ones), and
/// `Cache-Control: no-store` on every page but the static script: a page may show a name, a
/// national id or a booking, which no shared or browser cache should keep.
async fn security_headers(request: Request, next: Next) -> Response {
    let cacheable = request.uri().path().starts_with("/static/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !cacheable {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let defaults = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'unsafe-inline'; \
             form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in defaults {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}
