//! A plugin whose plugin-wide init panics.
use huiliu_sdk::*;

pub struct PanicInit;
impl Connector for PanicInit {
    fn manifest() -> Manifest {
        Manifest {
            id: "panic-init".into(),
            platform: "fixture".into(),
            version: "0.1.0".into(),
            description: "fixture: panics in init".into(),
            capabilities: vec![Capability::Push],
            config_keys: vec![],
        }
    }
    fn init_plugin() -> Result<(), ConnectorError> {
        panic!("fixture init exploded")
    }
    fn new(_: ShopConfig) -> Result<Self, ConnectorError> {
        Ok(PanicInit)
    }
}
huiliu_sdk::export_connector!(PanicInit);
