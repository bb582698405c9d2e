//! The words the workbench shows: display names by id and the Chinese wording of the codes
//! the API answers with (routing reasons, error codes), so the page renders a decision's
//! reasons and an error in Chinese from the same catalog `huiliu route explain` prints with.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use huiliu_routing::{Lang, Names};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::ApiState;
use crate::api::caller::Caller;
use crate::api::error::{ApiResult, Json};

/// Display names and the zh-CN catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct Directory {
    /// Display names by id: shops, agents, skill groups, categories, platforms.
    pub names: Names,
    /// zh-CN templates of the routing reason codes of decisions (`reasons.why.code` …):
    /// `{param}` is a parameter (ids shown by `names`), `{inner}` the nested reason,
    /// `{prefix}` a reason code given as a parameter.
    pub reasons: BTreeMap<String, String>,
    /// zh-CN wording of the API's error codes (`{code, message}` answers).
    pub errors: BTreeMap<String, String>,
}

/// The error codes of the API in Chinese. A code missing here is shown with its English
/// message.
pub const ERRORS_ZH: &[(&str, &str)] = &[
    ("unauthorized", "请先登录（登录已失效或令牌无效）"),
    ("bad_credentials", "账号或密码错误"),
    ("too_many_attempts", "尝试次数过多，请稍后再试"),
    ("forbidden", "没有权限执行此操作"),
    ("not_found", "未找到"),
    ("unknown_agent", "没有这个客服"),
    ("routing_off", "未配置分配规则"),
    ("method_not_allowed", "请求方式不对"),
    ("upgrade_required", "需要用 WebSocket 连接"),
    ("invalid_body", "请求内容不符合要求"),
    ("bad_json", "请求内容不是有效的 JSON"),
    ("bad_query", "查询参数不对"),
    ("bad_path", "路径参数不对"),
    ("too_large", "请求内容太大"),
    ("unsupported_media_type", "请求内容类型不对"),
    ("bad_target", "转接目标不对"),
    ("bad_tags", "标签不对"),
    ("empty_reply", "回复内容不能为空"),
    ("reserved_author", "不能使用保留的发送者名称"),
    ("notes_too_long", "备注太长"),
    ("note_required", "请填写说明"),
    ("reason_required", "请填写原因"),
    ("invalid_buyer", "买家信息不对"),
    ("invalid", "内容不对"),
    ("not_your_session", "这不是你接待的会话"),
    ("not_failed", "这条消息没有发送失败，无需重发"),
    ("cannot_open", "无法打开会话"),
    ("session_closed", "会话已结束"),
    ("transfer_refused", "无法转接"),
    ("wrong_state", "当前状态下不能这样操作"),
    ("expires_in_the_past", "到期时间已过"),
    ("compliance_blocked", "回复含违规内容，未发送"),
    ("invalid_config", "配置有误，仍使用原配置"),
    ("not_kept", "未保存原文"),
    ("wrong_password", "当前密码不对"),
    ("weak_password", "新密码需要 8 到 128 个字符"),
    ("not_allowed", "不能这样操作"),
    ("unknown_user", "没有这个账号"),
    ("user_exists", "账号已存在"),
    ("users_file", "账号文件无法写入，未做更改"),
    ("unknown_entry", "知识库里没有这个条目"),
    ("entry_read_only", "该条目来自千牛导出的 CSV 文件，只读：请修改该文件，或导入 faq.toml 后再编辑"),
    ("entry_exists", "编号已被其他条目使用"),
    ("id_mismatch", "条目编号不能修改，请新增一条"),
    ("unknown_shop", "条件里的店铺不在 shops.toml 中"),
    ("invalid_entry", "知识条目有误，未做更改"),
    ("faq_not_editable", "faq.toml 有错误或写法特殊，请手工修改"),
    ("faq_file", "知识库文件无法写入，未做更改"),
];

/// Display names and the Chinese wording of reason and error codes (any signed-in user).
#[utoipa::path(get, path = "/directory", tag = "meta",
    responses((status = 200, description = "Names and the zh-CN catalog", body = Directory)))]
pub async fn directory(State(state): State<Arc<ApiState>>, Caller(_): Caller) -> ApiResult<Directory> {
    Ok(Json(Directory {
        names: state.dashboard.names().await,
        reasons: huiliu_routing::reason::catalog(Lang::Zh)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        errors: ERRORS_ZH.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
    }))
}
