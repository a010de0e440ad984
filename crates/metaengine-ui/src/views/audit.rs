//! The audit trail with every filter of SPEC §8, details pretty-printed, and the verification of
//! the hash chains (SPEC §16).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use metaengine_store::{AuditQuery, AuditResult, EventType, PageRequest, Timestamp, VerifyReport};

use crate::Ctx;
use crate::form::Query;
use crate::page::{self, Layout, Shown, shown};
use crate::signed::Signed;

/// Rows one audit page shows.
const AUDIT_PAGE: u32 = 50;

/// One audit row as the page shows it.
pub struct Line {
    /// When.
    pub timestamp: String,
    /// Event type.
    pub event_type: String,
    /// Who.
    pub user: String,
    /// Tenant/realm.
    pub scope: String,
    /// Action.
    pub action: String,
    /// Resource.
    pub resource: String,
    /// `success` or `failure`.
    pub result: String,
    /// The error message, if it failed.
    pub error: String,
    /// Details, pretty JSON.
    pub details: String,
    /// Whether the row is chained yet.
    pub chained: bool,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    rows: Vec<Line>,
    filters: Vec<(&'static str, String)>,
    event_types: Vec<&'static str>,
    event_type: String,
    result: String,
    total: u64,
    page: u32,
    prev_link: Option<String>,
    next_link: Option<String>,
    verify: Option<VerifyReport>,
    error: Option<Shown>,
}

fn bad(key: &str, message: String) -> Shown {
    Shown::one(400, &format!("/{key}"), message)
}

fn time(q: &crate::form::FormData, key: &str) -> Result<Option<Timestamp>, Shown> {
    q.text(key)
        .map(|v| {
            // An RFC 3339 time, or the `datetime-local` input's `2026-12-07T10:00` (UTC).
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&chrono::Utc))
                .or_else(|_| {
                    chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M").map(|t| t.and_utc())
                })
                .map(Timestamp)
                .map_err(|_| {
                    bad(
                        key,
                        format!("`{key}` must be a time such as 2026-12-07T10:00:00Z, not `{v}`"),
                    )
                })
        })
        .transpose()
}

fn query(q: &crate::form::FormData, page: u32) -> Result<AuditQuery, Shown> {
    let event_types =
        q.0.iter()
            .filter(|(k, v)| k == "eventType" && !v.is_empty())
            .map(|(_, v)| {
                v.parse::<EventType>()
                    .map_err(|e| bad("eventType", e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
    let result = q
        .text("result")
        .map(str::parse::<AuditResult>)
        .transpose()
        .map_err(|e| bad("result", e.to_string()))?;
    Ok(AuditQuery {
        event_types,
        user_id: q.text("userId").map(str::to_owned),
        tenant_id: q.text("tenantId").map(str::to_owned),
        resource: q.text("resource").map(str::to_owned),
        result,
        from: time(q, "from")?,
        to: time(q, "to")?,
        page: PageRequest::new(page, AUDIT_PAGE),
    })
}

/// `GET /_/audit?eventType=&userId=&tenantId=&resource=&result=&from=&to=&page=[&verify=1]`.
pub async fn list(State(ctx): State<Ctx>, signed: Signed, Query(q): Query) -> Response {
    let layout = signed.layout("audit");
    let page_no = q
        .text("page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p > 0)
        .unwrap_or(1);
    let kept: Vec<(&'static str, String)> = ["userId", "tenantId", "resource", "from", "to"]
        .into_iter()
        .map(|k| (k, q.get(k).unwrap_or("").to_owned()))
        .collect();
    let mut error = None;
    let mut verify = None;
    if q.get("verify").is_some() {
        // Rows still in the batched writer are chained when written: verify what is written.
        ctx.app.audit.flush().await;
        match ctx
            .app
            .registry
            .verify_audit(&signed.actor, q.text("tenantId"))
            .await
        {
            Ok(r) => verify = Some(r),
            Err(e) => error = Some(shown(e)),
        }
    }
    let (rows, total) = match query(&q, page_no) {
        Ok(query) => {
            ctx.app.audit.flush().await;
            match ctx.app.registry.audit(&signed.actor, query).await {
                Ok(p) => (p.data, p.meta.total),
                Err(e) => {
                    error = Some(shown(e));
                    (Vec::new(), 0)
                }
            }
        }
        Err(e) => {
            error = Some(e);
            (Vec::new(), 0)
        }
    };
    let rows = rows
        .into_iter()
        .map(|r| Line {
            timestamp: r.timestamp.to_string(),
            event_type: r.event_type,
            user: r.user_id,
            scope: format!("{}/{}", r.tenant_id, r.realm_id),
            action: r.action,
            resource: r.resource,
            result: r.result,
            error: r.error_message.unwrap_or_default(),
            details: r
                .details
                .map(|d| serde_json::to_string_pretty(&d).unwrap_or_default())
                .unwrap_or_default(),
            chained: r.hash.is_some(),
        })
        .collect();
    let link_to = |n: u32| {
        let pairs: Vec<(String, String)> =
            q.0.iter()
                .filter(|(k, v)| k != "page" && k != "verify" && !v.is_empty())
                .cloned()
                .chain(std::iter::once(("page".to_owned(), n.to_string())))
                .collect();
        let query: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        format!("/_/audit?{query}")
    };
    let shown_so_far = u64::from(page_no) * u64::from(AUDIT_PAGE);
    let status = page::status_of(error.as_ref());
    page::html(
        status,
        &AuditPage {
            layout,
            rows,
            filters: kept,
            event_types: EventType::ALL.iter().map(|t| t.as_str()).collect(),
            event_type: q.get("eventType").unwrap_or("").to_owned(),
            result: q.get("result").unwrap_or("").to_owned(),
            total,
            page: page_no,
            prev_link: (page_no > 1).then(|| link_to(page_no - 1)),
            next_link: (shown_so_far < total).then(|| link_to(page_no + 1)),
            verify,
            error,
        },
    )
}
