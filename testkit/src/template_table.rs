//! The dedup table as `template.yaml` declares it, so that the tables the tests make can never
//! drift from the one that is deployed: change the keys there, and every test follows.

use std::path::Path;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
};
use yaml_rust2::{Yaml, YamlLoader};

/// The resource in `template.yaml` whose shape the tests copy.
const DEDUP_TABLE_RESOURCE: &str = "DedupTable";

/// The table's attribute definitions, key schema, indexes and stream.
#[derive(Debug, Clone, PartialEq)]
pub struct TableShape {
    pub attributes: Vec<AttributeDefinition>,
    pub key_schema: Vec<KeySchemaElement>,
    pub indexes: Vec<GlobalSecondaryIndex>,
    pub stream: Option<StreamSpecification>,
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
    let text = |entry: &Yaml, key: &str| -> String {
        let value = entry[key].as_str();
        value.unwrap_or_else(|| panic!("{name}: {key} is not text")).to_owned()
    };
    // Each entry's AttributeName with one other field of it.
    let named = |within: &Yaml, list: &str, field: &str| -> Vec<(String, String)> {
        let entries = within[list].as_vec().unwrap_or_else(|| panic!("{name}: no {list}"));
        entries.iter().map(|e| (text(e, "AttributeName"), text(e, field))).collect()
    };
    let key_schema = |within: &Yaml| -> Vec<KeySchemaElement> {
        named(within, "KeySchema", "KeyType")
            .into_iter()
            .map(|(attribute, key)| {
                let key = KeyType::from(key.as_str());
                let built = KeySchemaElement::builder().attribute_name(attribute).key_type(key);
                built.build().expect("name and key type")
            })
            .collect()
    };
    let indexes = properties["GlobalSecondaryIndexes"].as_vec().cloned().unwrap_or_default();
    let indexes = indexes
        .iter()
        .map(|index| {
            let projection =
                ProjectionType::from(text(&index["Projection"], "ProjectionType").as_str());
            GlobalSecondaryIndex::builder()
                .index_name(text(index, "IndexName"))
                .set_key_schema(Some(key_schema(index)))
                .projection(Projection::builder().projection_type(projection).build())
                .build()
                .expect("name, keys and projection")
        })
        .collect();
    let stream = properties["StreamSpecification"]["StreamViewType"].as_str().map(|view| {
        StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::from(view))
            .build()
            .expect("enabled and view")
    });
    let attributes = named(properties, "AttributeDefinitions", "AttributeType")
        .into_iter()
        .map(|(attribute, kind)| {
            let kind = ScalarAttributeType::from(kind.as_str());
            let built =
                AttributeDefinition::builder().attribute_name(attribute).attribute_type(kind);
            built.build().expect("name and type")
        })
        .collect();
    TableShape { attributes, key_schema: key_schema(properties), indexes, stream }
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

    #[test]
    fn the_deployed_table_has_the_pending_index_and_a_stream_of_new_images() {
        let shape = dedup_table();
        let index = shape.indexes.iter().find(|i| i.index_name() == "pending").expect("pending");
        let keys: Vec<_> = index.key_schema().iter().map(|k| k.attribute_name()).collect();
        assert_eq!(keys, ["pending_type", "received_at_ms"]);
        for key in keys {
            assert!(shape.attributes.iter().any(|a| a.attribute_name() == key), "{key}");
        }
        let stream = shape.stream.expect("a stream");
        assert_eq!(stream.stream_view_type(), Some(&StreamViewType::NewImage));
    }
}
