//! A person's rights under 个人信息保护法 (admins only): export everything stored about one
//! buyer, and erase it. Both are audited with who and why.

use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use super::is_blank;
use crate::api::ApiState;
use crate::api::caller::Admin;
use crate::api::error::{ApiError, ApiResult, ErrorBody, Json};
use crate::services::desk::{BuyerRef, ErasureReport};

/// Whom the request is about, and why it is made (written to the audit log).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"platform": "douyin", "shop": "dy-demo", "buyer_id": "dy_open_000021", "reason": "买家申请删除个人信息（工单 42）"}))]
pub struct BuyerRequest {
    /// The platform (`taobao`, `douyin`, `jd`, `wechat-shop`).
    #[schema(pattern = "[^ \\t\\n\\r\u{3000}]")]
    pub platform: String,
    /// The shop id.
    #[schema(pattern = "[^ \\t\\n\\r\u{3000}]")]
    pub shop: String,
    /// The platform's open buyer id.
    #[schema(pattern = "[^ \\t\\n\\r\u{3000}]")]
    pub buyer_id: String,
    /// Why (the person's request, a ticket).
    #[schema(pattern = "[^ \\t\\n\\r\u{3000}]")]
    pub reason: String,
}

fn buyer_of(body: &BuyerRequest) -> Result<BuyerRef, ApiError> {
    for (field, value) in [("platform", &body.platform), ("shop", &body.shop), ("buyer_id", &body.buyer_id)] {
        if is_blank(value) {
            return Err(ApiError::bad_request("invalid_buyer", format!("`{field}` must not be blank")));
        }
    }
    if is_blank(&body.reason) {
        return Err(ApiError::bad_request("reason_required", "say why (the person's request, a ticket)"));
    }
    Ok(BuyerRef { platform: body.platform.clone(), shop: body.shop.clone(), buyer_id: body.buyer_id.clone() })
}

/// Everything stored about one buyer as JSON: the customer record, every conversation with its
/// messages, transfers and routing decisions, order and refund events, blacklist entries.
#[utoipa::path(post, path = "/buyers/export", tag = "admin", request_body = BuyerRequest,
    responses(
        (status = 200, description = "The buyer's data", body = Object),
        (status = 404, description = "Nothing is stored about this buyer", body = ErrorBody),
    ))]
pub async fn export(
    State(state): State<Arc<ApiState>>,
    Admin(me): Admin,
    Json(body): Json<BuyerRequest>,
) -> ApiResult<serde_json::Value> {
    let buyer = buyer_of(&body)?;
    Ok(Json(state.desk.export_buyer(&buyer, &me.id, &body.reason).await?))
}

/// Erases everything stored about one buyer: open conversations are closed (the agent's seat is
/// freed), then messages, conversations, order events, the customer record and outbox rows are
/// deleted and blacklist reasons and evidence cleared, in one transaction. Dedupe keys stay (no
/// personal data); a buyer who writes again starts fresh.
#[utoipa::path(post, path = "/buyers/erase", tag = "admin", request_body = BuyerRequest,
    responses(
        (status = 200, description = "Erased", body = ErasureReport),
        (status = 404, description = "Nothing is stored about this buyer", body = ErrorBody),
    ))]
pub async fn erase(
    State(state): State<Arc<ApiState>>,
    Admin(me): Admin,
    Json(body): Json<BuyerRequest>,
) -> ApiResult<ErasureReport> {
    let buyer = buyer_of(&body)?;
    for session in state.desk.open_sessions_of(&buyer).await? {
        state
            .flow
            .close(session, "erased")
            .await
            .map_err(|e| ApiError::from(crate::services::ServiceError::Store(e)))?;
    }
    Ok(Json(state.desk.erase_buyer(&buyer, &me.id, &body.reason).await?))
}
