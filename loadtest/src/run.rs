//! Setting up, driving and checking one load-test run.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    LoadtestArgs, Scenario,
    client::{Conn, Endpoint, Prepared},
    grpc::GrpcConn,
    report::{InvariantCheck, Latency, QueueCheck, Report},
};
use crate::{Embedded, Host};

/// What every worker needs.
struct Target {
    base: String,
    /// For setting up and checking the run; the measured requests go through [`Conn`].
    client: Client,
    endpoint: Arc<Endpoint>,
    event_id: Uuid,
    amount_cents: i64,
    /// In join order, with --waiting-room.
    tokens: Vec<String>,
    waiting_room: bool,
}

/// One worker's tally, merged at the end.
struct Tally {
    latency: Histogram<u64>,
    statuses: HashMap<u16, u64>,
    errors: u64,
    granted: u64,
}

impl Tally {
    fn new() -> Self {
        Self {
            latency: Histogram::new_with_bounds(1, 120_000_000, 3).expect("static histogram bounds"),
            statuses: HashMap::new(),
            errors: 0,
            granted: 0,
        }
    }
}

/// Counters the progress display reads while the run is on.
#[derive(Default)]
struct Live {
    sent: AtomicU64,
    errors: AtomicU64,
    server_errors: AtomicU64,
}

/// Runs the load test described by `args`; `host` supplies the default admin credentials, the
/// embedded mode and the database side of the invariant check.
pub async fn run(args: LoadtestArgs, host: &dyn Host) -> anyhow::Result<Report> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.grpc && args.scenario == Scenario::Ceiling {
        bail!("--grpc measures Boxoffice's gRPC API; the ceiling scenario has none");
    }
    let mut embedded = None;
    let mut grpc_url = args.grpc_url.clone();
    let mut database_url = args.database_url.clone();
    let mut admin = None;
    let urls: Vec<String> = args.url.iter().map(|u| u.trim().trim_end_matches('/').to_string()).collect();
    let base = match urls.first() {
        Some(u) => u.clone(),
        None if args.scenario == Scenario::Ceiling => bail!("the ceiling scenario needs --url of a trivial server"),
        None => {
            let app: Embedded = host.start_embedded().await?;
            database_url.get_or_insert(app.database_url.clone());
            if grpc_url.is_none() {
                grpc_url = app.grpc_url.clone();
            }
            admin = Some(app.admin.clone());
            let url = app.url.clone();
            embedded = Some(app);
            url
        }
    };
    let client = Client::builder().tcp_nodelay(true).timeout(Duration::from_secs(30)).build()?;
    let endpoint = Endpoint::parse(&base)?;
    // Each connection goes to one node, the nodes taken in turn.
    let mut endpoints = Vec::new();
    for u in urls.iter().skip(1) {
        endpoints.push(Endpoint::parse(u)?);
    }

    let target = if args.scenario == Scenario::Ceiling {
        Target {
            base: base.clone(),
            client,
            endpoint,
            event_id: Uuid::nil(),
            amount_cents: 0,
            tokens: vec!["ceiling".into()],
            waiting_room: false,
        }
    } else {
        let admin = admin.unwrap_or_else(|| host.admin());
        prepare(&args, admin, base.clone(), client, endpoint).await?
    };
    let nodes: Vec<Arc<Endpoint>> = std::iter::once(target.endpoint.clone()).chain(endpoints).collect();
    let target = Arc::new(target);
    let grpc_url = match (args.grpc, grpc_url) {
        (false, _) => None,
        (true, Some(u)) => Some(Arc::new(u.trim().trim_end_matches('/').to_owned())),
        (true, None) => {
            bail!("--grpc needs --grpc-url when --url is given (the target's grpc.addr, e.g. http://127.0.0.1:50051)")
        }
    };

    let live = Arc::new(Live::default());
    let stop = Arc::new(AtomicBool::new(false));
    let budget = args.requests.map(|n| Arc::new(AtomicU64::new(n)));
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let progress = (!args.quiet).then(|| spawn_progress(live.clone(), stop.clone(), args.requests));

    let probes =
        crate::cpu::Probes { server_pids: args.server_pid.clone(), database_process: args.database_process.clone() };
    let cpu_before = probes.sample();
    let started = Instant::now();
    let mut workers = Vec::with_capacity(args.concurrency);
    for w in 0..args.concurrency {
        let (target, live, stop, budget) = (target.clone(), live.clone(), stop.clone(), budget.clone());
        let node = nodes[w % nodes.len()].clone();
        let (scenario, quantity, grpc_url) = (args.scenario, args.quantity, grpc_url.clone());
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            let token = &target.tokens[w % target.tokens.len()];
            let requests = Requests::new(&target, quantity, token)?;
            let mut conn = Conn::new(node);
            let mut grpc = match &grpc_url {
                Some(url) => Some(GrpcConn::connect(url, token, target.event_id, quantity, target.amount_cents).await?),
                None => None,
            };
            let mut step: u64 = w as u64;
            loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match &budget {
                    Some(b) => {
                        if b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_err() {
                            break;
                        }
                    }
                    None => {
                        if Instant::now() >= deadline {
                            break;
                        }
                    }
                }
                step = step.wrapping_add(1);
                match &mut grpc {
                    Some(g) => one_grpc_step(g, scenario, step, &mut tally, &live).await,
                    None => one_step(&requests, &mut conn, scenario, step, &mut tally, &live).await,
                }
            }
            Ok::<_, anyhow::Error>(tally)
        }));
    }
    let mut total = Tally::new();
    for w in workers {
        let t = w.await??;
        total.latency.add(&t.latency).ok();
        for (s, n) in t.statuses {
            *total.statuses.entry(s).or_default() += n;
        }
        total.errors += t.errors;
        total.granted += t.granted;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = probes.sample();
    stop.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        let _ = p.await;
    }

    let invariant = if args.scenario == Scenario::Ceiling {
        None
    } else {
        let sold_out_seen = total.statuses.get(&409).copied().unwrap_or(0) > 0;
        Some(check_invariant(&target, host, database_url.as_deref(), sold_out_seen).await?)
    };
    let queue = if target.waiting_room {
        let refused = total.statuses.get(&403).copied().unwrap_or(0);
        Some(check_queue(&target, refused).await?)
    } else {
        None
    };
    if let Some(app) = embedded {
        (app.stop)().await;
    }

    let requests = total.latency.len();
    let ms = |v: u64| v as f64 / 1000.0;
    Ok(Report {
        label: args.label.clone(),
        scenario: args.scenario,
        url: match &grpc_url {
            Some(g) => format!("{g} (gRPC)"),
            None if urls.len() > 1 => urls.join(","),
            None => base,
        },
        concurrency: args.concurrency,
        duration_s: elapsed,
        requests,
        requests_per_s: requests as f64 / elapsed,
        granted_per_s: total.granted as f64 / elapsed,
        latency: Latency {
            p50_ms: ms(total.latency.value_at_quantile(0.50)),
            p90_ms: ms(total.latency.value_at_quantile(0.90)),
            p99_ms: ms(total.latency.value_at_quantile(0.99)),
            max_ms: ms(total.latency.max()),
            mean_ms: total.latency.mean() / 1000.0,
        },
        statuses: total.statuses.into_iter().map(|(s, n)| (s.to_string(), n)).collect::<BTreeMap<_, _>>(),
        errors: total.errors,
        cpu: crate::cpu::CpuUse::between(cpu_before, cpu_after, total.granted, requests),
        invariant,
        queue,
    })
}

async fn post(client: &Client, url: String, token: Option<&str>, body: Value) -> anyhow::Result<(StatusCode, Value)> {
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await?;
    let status = res.status();
    let body = res.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// Creates the hot event and the users, and logs them in.
async fn prepare(
    args: &LoadtestArgs,
    (default_login, default_password): (String, String),
    base: String,
    client: Client,
    endpoint: Arc<Endpoint>,
) -> anyhow::Result<Target> {
    let api = format!("{base}/api/v1");
    let login = args.admin_login.clone().unwrap_or(default_login);
    let password = args.admin_password.clone().unwrap_or(default_password);
    let (s, body) =
        post(&client, format!("{api}/auth/login"), None, json!({"login": login, "password": password})).await?;
    if s != StatusCode::OK {
        bail!("admin login failed ({s}): {body}; pass --admin-login/--admin-password");
    }
    let admin = body["access_token"].as_str().context("no access token")?.to_string();
    let run = Uuid::new_v4().simple().to_string()[..8].to_string();
    let (s, cat) = post(
        &client,
        format!("{api}/categories"),
        Some(&admin),
        json!({"name": format!("loadtest-{run}"), "kind": "paid"}),
    )
    .await?;
    if s != StatusCode::CREATED {
        bail!("creating the category failed ({s}): {cat}");
    }
    let capacity = args.capacity.unwrap_or(if args.scenario == Scenario::Rush { 1_000 } else { 1_000_000 });
    let price = 1_000i64;
    let mut event = json!({
        "name": format!("Hot event {run}"), "category_id": cat["id"], "price_cents": price, "currency": "EUR",
        "starts_at": "2030-01-01T20:00:00Z", "total_slots": capacity, "max_per_order": 100, "hold_seconds": 3600,
        // Every virtual user is the same account: no per-person limit.
        "max_per_person": 0,
    });
    if args.waiting_room {
        event["waiting_room"] = json!(true);
        event["admit_per_second"] = json!(args.admit_per_second);
    }
    let (mut s, mut ev) = post(&client, format!("{api}/events"), Some(&admin), event.clone()).await?;
    if s == StatusCode::UNPROCESSABLE_ENTITY && ev.to_string().contains("max_per_person") {
        // A target older than per-person limits (an A/B against an earlier build) has none.
        event.as_object_mut().map(|o| o.remove("max_per_person"));
        (s, ev) = post(&client, format!("{api}/events"), Some(&admin), event.clone()).await?;
    }
    if s == StatusCode::UNPROCESSABLE_ENTITY {
        // The target allows shorter holds; take its default.
        event.as_object_mut().map(|o| o.remove("hold_seconds"));
        (s, ev) = post(&client, format!("{api}/events"), Some(&admin), event).await?;
    }
    if s != StatusCode::CREATED {
        bail!("creating the hot event failed ({s}): {ev}");
    }
    let event_id = Uuid::parse_str(ev["id"].as_str().context("event id")?)?;

    let users = args.users.max(1);
    let mut tokens = Vec::with_capacity(users);
    let mut pending = futures::stream::FuturesUnordered::new();
    use futures::StreamExt;
    for i in 0..users {
        let (client, api, run) = (client.clone(), api.clone(), run.clone());
        pending.push(async move {
            let name = format!("lt{run}u{i}");
            let password = "loadtest-password";
            let (s, b) = post(
                &client,
                format!("{api}/auth/register"),
                None,
                json!({"email": format!("{name}@loadtest.invalid"), "username": name, "password": password}),
            )
            .await?;
            if s != StatusCode::CREATED {
                bail!("registering a user failed ({s}): {b}");
            }
            let (s, b) =
                post(&client, format!("{api}/auth/login"), None, json!({"login": name, "password": password})).await?;
            if s != StatusCode::OK {
                bail!("user login failed ({s}): {b}");
            }
            Ok::<_, anyhow::Error>(b["access_token"].as_str().unwrap_or_default().to_string())
        });
        if pending.len() >= 8
            && let Some(t) = pending.next().await
        {
            tokens.push(t?);
        }
    }
    while let Some(t) = pending.next().await {
        tokens.push(t?);
    }
    if args.waiting_room {
        // One after another, so the join order is the order of `tokens`.
        for t in &tokens {
            let (s, b) = post(&client, format!("{api}/events/{event_id}/queue"), Some(t), json!({})).await?;
            if s != StatusCode::CREATED {
                bail!("joining the waiting room failed ({s}): {b}");
            }
        }
        eprintln!("loadtest: {users} users queued, admitted at {} a second", args.admit_per_second);
    }
    eprintln!("loadtest: event {event_id} with {capacity} seats, {users} users ready");
    let amount_cents = price * i64::from(args.quantity);
    Ok(Target { base, client, endpoint, event_id, amount_cents, tokens, waiting_room: args.waiting_room })
}

/// One worker's requests, built once.
struct Requests {
    order: Prepared,
    ceiling: Prepared,
    event: Prepared,
    events: Prepared,
    token: String,
    amount_cents: i64,
}

impl Requests {
    fn new(t: &Target, quantity: u32, token: &str) -> anyhow::Result<Self> {
        let body = json!({"event_id": t.event_id, "quantity": quantity});
        Ok(Self {
            order: Prepared::post("/api/v1/orders", Some(token), &body)?,
            ceiling: Prepared::post("/ceiling", Some(token), &body)?,
            event: Prepared::get(&format!("/api/v1/events/{}", t.event_id), Some(token))?,
            events: Prepared::get("/api/v1/events?limit=20", Some(token))?,
            token: token.to_string(),
            amount_cents: t.amount_cents,
        })
    }
}

/// Sends `req`, timing it until the whole response is read, and tallies the outcome.
async fn timed(tally: &mut Tally, live: &Live, conn: &mut Conn, req: &Prepared) -> Option<(StatusCode, Bytes)> {
    let t0 = Instant::now();
    let result = conn.send(req).await;
    live.sent.fetch_add(1, Ordering::Relaxed);
    match result {
        Ok((status, body)) => {
            tally.latency.record(t0.elapsed().as_micros().max(1) as u64).ok();
            *tally.statuses.entry(status.as_u16()).or_default() += 1;
            if status.is_server_error() {
                live.server_errors.fetch_add(1, Ordering::Relaxed);
            }
            Some((status, body))
        }
        Err(_) => {
            tally.errors += 1;
            live.errors.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

async fn one_step(r: &Requests, conn: &mut Conn, scenario: Scenario, step: u64, tally: &mut Tally, live: &Live) {
    match scenario {
        Scenario::Ceiling => {
            if let Some((s, _)) = timed(tally, live, conn, &r.ceiling).await
                && s.is_success()
            {
                tally.granted += 1;
            }
        }
        Scenario::Hold | Scenario::Rush => {
            if let Some((s, _)) = timed(tally, live, conn, &r.order).await
                && s == StatusCode::CREATED
            {
                tally.granted += 1;
            }
        }
        Scenario::Checkout => {
            let Some((s, body)) = timed(tally, live, conn, &r.order).await else { return };
            if s != StatusCode::CREATED {
                return;
            }
            tally.granted += 1;
            let order: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let pay = json!({"order_id": order["id"], "amount_cents": r.amount_cents, "card_token": "tok_ok"});
            match Prepared::post("/api/v1/payments", Some(&r.token), &pay) {
                Ok(pay) => {
                    timed(tally, live, conn, &pay).await;
                }
                Err(_) => tally.errors += 1,
            }
        }
        Scenario::Mixed => {
            // Four in five requests browse; one books.
            let req = match step % 5 {
                0 => &r.order,
                1 => &r.events,
                _ => &r.event,
            };
            if let Some((s, _)) = timed(tally, live, conn, req).await
                && step.is_multiple_of(5)
                && s == StatusCode::CREATED
            {
                tally.granted += 1;
            }
        }
    }
}

/// Times one gRPC call until its answer is decoded, and tallies its REST-equivalent status.
async fn timed_grpc<T>(tally: &mut Tally, live: &Live, call: impl std::future::Future<Output = (u16, T)>) -> (u16, T) {
    let t0 = Instant::now();
    let (status, value) = call.await;
    live.sent.fetch_add(1, Ordering::Relaxed);
    tally.latency.record(t0.elapsed().as_micros().max(1) as u64).ok();
    *tally.statuses.entry(status).or_default() += 1;
    if status >= 500 {
        live.server_errors.fetch_add(1, Ordering::Relaxed);
    }
    (status, value)
}

/// [`one_step`] over gRPC: the same calls, the same tally.
async fn one_grpc_step(g: &mut GrpcConn, scenario: Scenario, step: u64, tally: &mut Tally, live: &Live) {
    match scenario {
        Scenario::Ceiling => {}
        Scenario::Hold | Scenario::Rush => {
            if timed_grpc(tally, live, g.place()).await.0 == 201 {
                tally.granted += 1;
            }
        }
        Scenario::Checkout => {
            let (_, order) = timed_grpc(tally, live, g.place()).await;
            if let Some(id) = order {
                tally.granted += 1;
                timed_grpc(tally, live, async { (g.pay(id).await, ()) }).await;
            }
        }
        Scenario::Mixed => match step % 5 {
            0 => {
                if timed_grpc(tally, live, g.place()).await.0 == 201 {
                    tally.granted += 1;
                }
            }
            1 => {
                timed_grpc(tally, live, async { (g.events().await, ()) }).await;
            }
            _ => {
                timed_grpc(tally, live, async { (g.event().await, ()) }).await;
            }
        },
    }
}

fn spawn_progress(live: Arc<Live>, stop: Arc<AtomicBool>, total: Option<u64>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let bar = match total {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {bar:30} {pos} requests  {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        let started = Instant::now();
        let mut last = (Instant::now(), 0u64);
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let sent = live.sent.load(Ordering::Relaxed);
            let now = Instant::now();
            let rate = (sent - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
            last = (now, sent);
            bar.set_position(sent);
            bar.set_message(format!(
                "{rate:.0} req/s now, {:.0} avg, {} errors, {} 5xx",
                sent as f64 / started.elapsed().as_secs_f64().max(1e-3),
                live.errors.load(Ordering::Relaxed),
                live.server_errors.load(Ordering::Relaxed)
            ));
        }
        bar.finish_and_clear();
    })
}

/// The waiting room after the run, as each user sees it: their place, and their own orders.
async fn check_queue(t: &Target, refused_queue_required: u64) -> anyhow::Result<QueueCheck> {
    let api = format!("{}/api/v1", t.base);
    let get = |path: String, token: &str| {
        let req = t.client.get(format!("{api}{path}")).bearer_auth(token);
        async move { anyhow::Ok(req.send().await?.json::<Value>().await?) }
    };
    let mut admitted_until = Vec::new();
    let mut booked_without_admission = 0;
    for token in &t.tokens {
        let place = get(format!("/events/{}/queue/me", t.event_id), token).await?;
        let until = place["admitted_until"].as_str().and_then(|u| u.parse::<chrono::DateTime<chrono::Utc>>().ok());
        admitted_until.push(until);
        let mut next: Option<String> = None;
        loop {
            let page = match &next {
                Some(n) => format!("/orders?limit=100&next_token={n}"),
                None => "/orders?limit=100".into(),
            };
            let orders = get(page, token).await?;
            for o in orders["items"].as_array().into_iter().flatten() {
                if o["event_id"] != t.event_id.to_string() {
                    continue;
                }
                let at = o["created_at"].as_str().and_then(|c| c.parse::<chrono::DateTime<chrono::Utc>>().ok());
                if until.is_none_or(|u| at.is_none_or(|at| at > u)) {
                    booked_without_admission += 1;
                }
            }
            next = orders["next_token"].as_str().map(str::to_owned);
            if next.is_none() {
                break;
            }
        }
    }
    let admitted = admitted_until.iter().filter(|u| u.is_some()).count();
    // The admitted are the first `admitted` in join order, with admissions in that order.
    let front = admitted_until.iter().take(admitted).flatten().collect::<Vec<_>>();
    let in_join_order = front.len() == admitted && front.windows(2).all(|w| w[0] <= w[1]);
    Ok(QueueCheck {
        joined: t.tokens.len() as u64,
        admitted: admitted as u64,
        in_join_order,
        booked_without_admission,
        refused_queue_required,
    })
}

/// Reads the hot event back from the API and, if reachable, sums its orders in the database.
async fn check_invariant(
    t: &Target,
    host: &dyn Host,
    database_url: Option<&str>,
    sold_out_seen: bool,
) -> anyhow::Result<InvariantCheck> {
    let e: Value = t.client.get(format!("{}/api/v1/events/{}", t.base, t.event_id)).send().await?.json().await?;
    let n = |k: &str| e[k].as_u64().unwrap_or(u64::MAX);
    let (total, available, held, sold) = (n("total_slots"), n("available_slots"), n("held_slots"), n("sold_slots"));
    let (mut db_held, mut db_sold) = (None, None);
    if let Some(url) = database_url {
        let (h, s) = host.stored_counts(url, t.event_id).await.context("reading the orders table")?;
        (db_held, db_sold) = (Some(h), Some(s));
    }
    let api_ok = held + sold <= total && available + held + sold == total;
    let db_ok = db_held.is_none_or(|h| h == held) && db_sold.is_none_or(|s| s == sold);
    Ok(InvariantCheck {
        total,
        available,
        held,
        sold,
        db_held,
        db_sold,
        holds: api_ok && db_ok,
        demand_exceeded_supply: sold_out_seen,
        exhausted_exactly: sold_out_seen.then_some(held + sold == total),
    })
}

/// The ceiling: a trivial axum endpoint that parses a JSON body like an order and answers 201,
/// so the harness and machine can be measured without Boxoffice's work.
pub async fn trivial_server(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    use axum::{Json, Router, http::StatusCode as S, routing::post};
    let app = Router::new().route(
        "/ceiling",
        post(|Json(body): Json<Value>| async move {
            (S::CREATED, Json(json!({"id": Uuid::now_v7(), "status": "pending", "echo": body["quantity"]})))
        }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("ceiling server on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
