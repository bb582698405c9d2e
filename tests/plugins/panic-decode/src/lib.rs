//! A plugin that accepts pushes but panics on a body starting with `!`.
use huiliu_sdk::*;

pub struct PanicDecode {
    shop: String,
}
impl Connector for PanicDecode {
    fn manifest() -> Manifest {
        Manifest {
            id: "panic-decode".into(),
            platform: "fixture".into(),
            version: "0.1.0".into(),
            description: "fixture: panics while decoding a push that starts with !".into(),
            capabilities: vec![Capability::Push],
            config_keys: vec![],
        }
    }
    fn new(config: ShopConfig) -> Result<Self, ConnectorError> {
        Ok(PanicDecode { shop: config.shop_id })
    }
    fn connections(&self) -> Vec<ConnectionNeed> {
        vec![ConnectionNeed::PushRoute]
    }
    fn decode_push(&mut self, push: &HttpPush, now: Millis) -> PushOutcome {
        if push.body.first() == Some(&b'!') {
            panic!("fixture decoder exploded");
        }
        let text = String::from_utf8_lossy(&push.body).into_owned();
        PushOutcome::Accepted {
            events: vec![InboundEvent {
                platform: "fixture".into(),
                shop: self.shop.clone(),
                event_id: format!("{now}-{}", push.body.len()),
                buyer: Buyer { open_id: "fixture-buyer".into(), nick: None },
                occurred_at: now,
                kind: EventKind::BuyerMessage(BuyerMessage {
                    conversation: None,
                    content: vec![Content::text(text)],
                    vip: Default::default(),
                    reply_context: Default::default(),
                }),
            }],
            dead_letters: vec![],
            ack: HttpResponse::text(200, "ok"),
            nack: HttpResponse::text(503, "retry"),
            ignored: vec![],
            lookups: Vec::new(),
        }
    }
}
huiliu_sdk::export_connector!(PanicDecode);
