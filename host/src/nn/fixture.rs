//! A tiny ONNX model made in code, for tests and examples that must not
//! depend on a model built elsewhere: `scores = x · W + B` and
//! `label = argmax(scores)`, with `x: float32 [N, 3]`,
//! `W = [[1, 0], [0, 1], [1, -1]]`, `B = [0.5, -0.5]`.

use prost::Message;
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataType,
    tensor_shape_proto::dimension::Value as Dim, tensor_shape_proto::Dimension, type_proto,
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

fn value(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(d.clone()),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn floats(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        float_data: data.to_vec(),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attributes: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: output.into(),
        op_type: op.into(),
        attribute: attributes,
        ..Default::default()
    }
}

fn int_attr(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

/// The model's bytes (ONNX, opset 13).
pub fn linear_argmax() -> Vec<u8> {
    let n = Dim::DimParam("N".into());
    let graph = GraphProto {
        name: "linear-argmax".into(),
        node: vec![
            node("MatMul", &["x", "W"], "xw", vec![]),
            node("Add", &["xw", "B"], "scores", vec![]),
            node(
                "ArgMax",
                &["scores"],
                "label",
                vec![int_attr("axis", 1), int_attr("keepdims", 0)],
            ),
        ],
        initializer: vec![
            floats("W", &[3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, -1.0]),
            floats("B", &[2], &[0.5, -0.5]),
        ],
        input: vec![value("x", DataType::Float, &[n.clone(), Dim::DimValue(3)])],
        output: vec![
            value("scores", DataType::Float, &[n.clone(), Dim::DimValue(2)]),
            value("label", DataType::Int64, &[n]),
        ],
        ..Default::default()
    };
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        producer_name: "labhost".into(),
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}
