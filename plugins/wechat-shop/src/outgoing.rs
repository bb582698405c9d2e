//! Replies through `sendmsg`, and media through `cosupload`.
//!
//! `POST {api_url}/channels/ec/commkf/sendmsg?access_token=…` with
//! `{"request_id", "open_id", "msg_type", "<msg_type>": {…}}`
//! (<https://developers.weixin.qq.com/doc/store/shop/API/kf/api_sendmsg>). `request_id` is the
//! gateway's `client_msg_id`: WeChat de-duplicates on it ("如果填写则以该任务ID进行去重"), so a
//! retried send can never reach the buyer twice.
//!
//! | element(s)                         | `msg_type`      | object                         |
//! |------------------------------------|-----------------|--------------------------------|
//! | text and emoji only                | `text`          | `{"content": <fallback texts>}` |
//! | one image                          | `image`         | `{"cos_url": <url>}`            |
//! | one product card                   | `product_share` | `{"product_id": …}` (MODELED field name) |
//! | one order card                     | `order_share`   | `{"order_id": …}`               |
//!
//! WeChat sends one element per message; a reply mixing a card or image with other elements is
//! refused as invalid input (the gateway splits multi-element replies).
//!
//! Images: `sendmsg` takes a `cos_url` from `cosupload`
//! (<https://developers.weixin.qq.com/doc/store/shop/API/kf/api_cosupload>), a multipart upload
//! of the file with `open_id` and `msg_type`. An image whose URL is already a `cos_url` (the
//! platform's `…/commkf/downloadmedia?…` links: a picture the buyer sent, or one uploaded
//! before) is sent as it is; any other picture is uploaded first: [`needs_upload`] asks the
//! gateway to fetch it (`SendPrep::Upload`), [`upload_for`] builds the multipart request from
//! the bytes, and [`uploaded`] puts the answer's `cos_url` into the element.

use huiliu_sdk::{
    ConnectorError, Content, HttpRequest, HttpResponse, OutgoingMessage, PlatformError, SendOutcome, UploadOutcome,
    fallback_text,
};
use serde_json::{Value, json};

use crate::classify::parse_reply;

/// The sendmsg path.
pub const SEND_PATH: &str = "/channels/ec/commkf/sendmsg";
/// The cosupload path.
pub const UPLOAD_PATH: &str = "/channels/ec/commkf/cosupload";

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The sendmsg body for `message`.
pub fn send_body(message: &OutgoingMessage) -> Result<Value, ConnectorError> {
    if message.content.is_empty() {
        return Err(ConnectorError::invalid("a reply needs at least one element"));
    }
    if message.buyer.open_id.trim().is_empty() {
        return Err(ConnectorError::invalid("a reply needs the buyer's open_id"));
    }
    let all_text = message.content.iter().all(|c| matches!(c, Content::Text { .. } | Content::Emoji { .. }));
    let (msg_type, object) = if all_text {
        ("text", json!({"content": fallback_text(&message.content)}))
    } else {
        let [only] = message.content.as_slice() else {
            return Err(ConnectorError::invalid(
                "WeChat Shop sends one element per message: send the image or card on its own",
            ));
        };
        match only {
            Content::Image { url, .. } => ("image", json!({"cos_url": url})),
            Content::Product { product_id, .. } => ("product_share", json!({"product_id": product_id})),
            Content::Order { order_id, .. } => ("order_share", json!({"order_id": order_id})),
            Content::Text { .. } | Content::Emoji { .. } => unreachable!("handled as text above"),
        }
    };
    let mut body = json!({
        "request_id": message.client_msg_id,
        "open_id": message.buyer.open_id,
        "msg_type": msg_type,
    });
    body[msg_type] = object;
    Ok(body)
}

/// The signed (token-bearing) sendmsg request.
pub fn send_request(
    api_url: &str,
    access_token: &str,
    message: &OutgoingMessage,
) -> Result<HttpRequest, ConnectorError> {
    let body = send_body(message)?;
    Ok(HttpRequest {
        method: "POST".into(),
        url: format!("{api_url}{SEND_PATH}?access_token={}", query_escape(access_token)),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    })
}

/// A cosupload request: `file` (with `file_name`), `open_id` and `msg_type` (`image`, `video`
/// or `file`) as multipart/form-data. `boundary` must not occur in `file` (the caller picks it;
/// a connector has no randomness).
pub fn upload_request(
    api_url: &str,
    access_token: &str,
    open_id: &str,
    msg_type: &str,
    file_name: &str,
    file: &[u8],
    boundary: &str,
) -> Result<HttpRequest, ConnectorError> {
    if !matches!(msg_type, "image" | "video" | "file") {
        return Err(ConnectorError::invalid(format!("cosupload takes image, video or file, not `{msg_type}`")));
    }
    if boundary.is_empty() || file.windows(boundary.len()).any(|w| w == boundary.as_bytes()) {
        return Err(ConnectorError::invalid("the multipart boundary occurs in the file"));
    }
    let name = file_name.replace(['"', '\r', '\n'], "_");
    let mut body = Vec::with_capacity(file.len() + 512);
    for (field, value) in [("open_id", open_id), ("msg_type", msg_type)] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok(HttpRequest {
        method: "POST".into(),
        url: format!("{api_url}{UPLOAD_PATH}?access_token={}", query_escape(access_token)),
        headers: vec![("content-type".into(), format!("multipart/form-data; boundary={boundary}"))],
        body,
    })
}

/// The path every `cos_url` carries (cosupload answers and pictures buyers send).
pub const COS_PATH: &str = "/commkf/downloadmedia";

/// The element of `message` to upload first, with its URL: a single image not yet in the
/// platform's media storage.
pub fn needs_upload(message: &OutgoingMessage) -> Option<(u32, String)> {
    let [Content::Image { url, .. }] = message.content.as_slice() else { return None };
    (!url.contains(COS_PATH) && !url.trim().is_empty()).then(|| (0, url.clone()))
}

/// The cosupload request for element `element` (an image) of `message`, holding `media`.
pub fn upload_for(
    api_url: &str,
    access_token: &str,
    message: &OutgoingMessage,
    element: u32,
    media: &[u8],
) -> Result<HttpRequest, ConnectorError> {
    let Some(Content::Image { url, .. }) = message.content.get(element as usize) else {
        return Err(ConnectorError::invalid(format!("element {element} is not an image")));
    };
    let name = url.rsplit('/').next().and_then(|n| n.split(['?', '#']).next()).filter(|n| !n.is_empty());
    // A boundary the file does not contain, chosen without randomness (sans-IO).
    let mut boundary = format!("huiliu-{}", message.client_msg_id);
    while media.windows(boundary.len()).any(|w| w == boundary.as_bytes()) {
        boundary.push('x');
    }
    upload_request(
        api_url,
        access_token,
        &message.buyer.open_id,
        "image",
        name.unwrap_or("image.jpg"),
        media,
        &boundary,
    )
}

/// The reply after a cosupload answer: element `element` now points at the `cos_url`, or the
/// failure classified like a send.
pub fn uploaded(message: &OutgoingMessage, element: u32, response: &HttpResponse) -> UploadOutcome {
    let outcome = crate::classify::classify_send(response);
    if !matches!(outcome, SendOutcome::Delivered { .. }) {
        return UploadOutcome::Failed { outcome };
    }
    match parse_upload(response.status, &response.body) {
        Ok(cos_url) => {
            let mut message = message.clone();
            if let Some(Content::Image { url, .. }) = message.content.get_mut(element as usize) {
                *url = cos_url;
            }
            UploadOutcome::Ready { message }
        }
        Err(error) => UploadOutcome::Failed { outcome: SendOutcome::Permanent { error } },
    }
}

/// The `cos_url` of a cosupload answer, or the platform's error.
pub fn parse_upload(status: u16, body: &[u8]) -> Result<String, PlatformError> {
    let reply = parse_reply(status, body)?;
    reply.get("cos_url").and_then(Value::as_str).filter(|u| !u.is_empty()).map(str::to_owned).ok_or_else(|| {
        PlatformError {
            http_status: status,
            code: "0".into(),
            sub_code: None,
            message: "cosupload answered without `cos_url`".into(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_from_the_web_is_uploaded_and_a_cos_url_is_not() {
        let message = |url: &str| OutgoingMessage {
            staff_account: None,
            client_msg_id: "hl-9-ab".into(),
            shop: "wx-1".into(),
            buyer: huiliu_sdk::Buyer { open_id: "o1".into(), nick: None },
            conversation: None,
            reply_context: Default::default(),
            content: vec![Content::image(url)],
        };
        let web = message("https://img.example.com/a/coat.jpg?x=1");
        assert_eq!(needs_upload(&web), Some((0, "https://img.example.com/a/coat.jpg?x=1".into())));
        assert_eq!(
            needs_upload(&message("https://api.weixin.qq.com/shop/commkf/downloadmedia?encrypted_param=e")),
            None
        );
        assert_eq!(needs_upload(&OutgoingMessage { content: vec![Content::text("hi")], ..web.clone() }), None);

        let request = upload_for("https://api.weixin.qq.com", "T", &web, 0, b"JPEGDATA").unwrap();
        let body = String::from_utf8_lossy(&request.body);
        assert!(
            body.contains("filename=\"coat.jpg\"") && body.contains("JPEGDATA") && body.contains("hl-9-ab"),
            "{body}"
        );
        assert!(upload_for("https://api.weixin.qq.com", "T", &web, 1, b"x").is_err(), "no element 1");
        // The boundary never occurs in the file.
        let tricky = upload_for("https://x", "T", &web, 0, b"--huiliu-hl-9-ab--").unwrap();
        let ct = &tricky.headers[0].1;
        assert!(ct.ends_with("huiliu-hl-9-abx"), "{ct}");

        let ok = HttpResponse::json(
            200,
            r#"{"errcode":0,"errmsg":"ok","cos_url":"https://api.weixin.qq.com/shop/commkf/downloadmedia?encrypted_param=u1"}"#,
        );
        let UploadOutcome::Ready { message: ready } = uploaded(&web, 0, &ok) else { panic!("ready") };
        assert!(matches!(&ready.content[0], Content::Image { url, .. } if url.ends_with("encrypted_param=u1")));
        let expired = HttpResponse::json(200, r#"{"errcode":42001,"errmsg":"access_token expired"}"#);
        assert!(matches!(
            uploaded(&web, 0, &expired),
            UploadOutcome::Failed { outcome: SendOutcome::TokenExpired { .. } }
        ));
        let no_url = HttpResponse::json(200, r#"{"errcode":0,"errmsg":"ok"}"#);
        assert!(matches!(uploaded(&web, 0, &no_url), UploadOutcome::Failed { outcome: SendOutcome::Permanent { .. } }));
    }
}
