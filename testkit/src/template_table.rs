//! The dedup table as `template.yaml` declares it, so that the tables the tests make can never
//! drift from the one that is deployed: change the keys there, and every test follows.

use std::path::Path;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, KeySchemaElement, KeyType, ScalarAttributeType,
};
use yaml_rust2::{Yaml, YamlLoader};

/// The resource in `template.yaml` whose shape the tests copy.
const DEDUP_TABLE_RESOURCE: &str = "DedupTable";

/// The table's attribute definitions and key schema.
#[derive(Debug, Clone, PartialEq)]
pub struct TableShape {
    pub attributes: Vec<AttributeDefinition>,
    pub key_schema: Vec<KeySchemaElement>,
}

/// `DedupTable`'s shape, read from the workspace's `template.yaml`.
pub fn dedup_table() -> TableShape {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(&path).expect("template.yaml beside the workspace");
    shape_of(&text, DEDUP_TABLE_RESOURCE)
}

/// The shape of the table resource `name` in the template `text`. CloudFormation's short tags
/// (`!Ref`, `!If`) are read as the values they tag; the keys use none.
fn shape_of(text: &str, name: &str) -> TableShape {
    let documents = YamlLoader::load_from_str(text).expect("template.yaml is YAML");
    let properties = &documents[0]["Resources"][name]["Properties"];
    // Each entry's AttributeName with one other field of it.
    let named = |list: &str, field: &str| -> Vec<(String, String)> {
        let text = |entry: &Yaml, key: &str| -> String {
            let value = entry[key].as_str();
            value.unwrap_or_else(|| panic!("{name}: {list}: {key} is not text")).to_owned()
        };
        let entries = properties[list].as_vec().unwrap_or_else(|| panic!("{name}: no {list}"));
        entries.iter().map(|e| (text(e, "AttributeName"), text(e, field))).collect()
    };
    let attributes = named("AttributeDefinitions", "AttributeType")
        .into_iter()
        .map(|(attribute, kind)| {
            let kind = ScalarAttributeType::from(kind.as_str());
            let built =
                AttributeDefinition::builder().attribute_name(attribute).attribute_type(kind);
            built.build().expect("name and type")
        })
        .collect();
    let key_schema = named("KeySchema", "KeyType")
        .into_iter()
        .map(|(attribute, key)| {
            let key = KeyType::from(key.as_str());
            let built = KeySchemaElement::builder().attribute_name(attribute).key_type(key);
            built.build().expect("name and key type")
        })
        .collect();
    TableShape { attributes, key_schema }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_as_written_whatever_tags_surround_them() {
        let template = "
Resources:
  Other: {Type: AWS::SNS::Topic, Properties: {TopicName: !Sub '${AWS::StackName}-x'}}
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions:
        - {AttributeName: id, AttributeType: S}
        - {AttributeName: at, AttributeType: N}
      KeySchema:
        - {AttributeName: id, KeyType: HASH}
        - {AttributeName: at, KeyType: RANGE}
      PointInTimeRecoverySpecification:
        PointInTimeRecoveryEnabled: !If [Enabled, true, false]
";
        let shape = shape_of(template, "Table");
        let attributes: Vec<_> =
            shape.attributes.iter().map(|a| (a.attribute_name(), a.attribute_type())).collect();
        assert_eq!(attributes, [("id", &ScalarAttributeType::S), ("at", &ScalarAttributeType::N)]);
        let keys: Vec<_> =
            shape.key_schema.iter().map(|k| (k.attribute_name(), k.key_type())).collect();
        assert_eq!(keys, [("id", &KeyType::Hash), ("at", &KeyType::Range)]);
    }

    #[test]
    fn the_deployed_table_has_a_hash_key_among_its_attributes() {
        let shape = dedup_table();
        let hash = shape.key_schema.iter().find(|k| k.key_type() == &KeyType::Hash);
        let hash = hash.expect("a hash key").attribute_name();
        assert!(shape.attributes.iter().any(|a| a.attribute_name() == hash), "{shape:?}");
    }
}
