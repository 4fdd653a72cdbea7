"""template.yaml as the Python tests read it: CloudFormation's short forms (`!Ref X`, `!Sub ...`)
become {"Ref": X}, {"Sub": ...}, and the dedup table's keys are the deployed table's, so the
tables the tests make can never drift from it."""

import pathlib

import yaml

TEMPLATE = pathlib.Path(__file__).resolve().parent.parent / "template.yaml"


class TemplateLoader(yaml.SafeLoader):
    """A safe loader that reads any `!Tag value` as {"Tag": value}."""


TemplateLoader.add_multi_constructor(
    "!",
    lambda loader, tag, node: {tag[1:]: (
        loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
        else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node))},
)


def load_template():
    return yaml.load(TEMPLATE.read_text(), Loader=TemplateLoader)


def dedup_table_keys():
    """`create_table` arguments for a table shaped as the template's DedupTable: its keys, its
    indexes and its stream."""
    properties = load_template()["Resources"]["DedupTable"]["Properties"]
    shape = {"AttributeDefinitions": properties["AttributeDefinitions"], "KeySchema": properties["KeySchema"]}
    if "GlobalSecondaryIndexes" in properties:
        shape["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    if "StreamSpecification" in properties:
        shape["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
    return shape
