#pragma once
// Internal: the StoredDataValue codec shared by the storage bodies (body_storage.cpp) and the data
// signature input (data.cpp), so that both write a value the same way.

#include "p2psip/protocol/data.hpp"
#include "p2psip/protocol/reader.hpp"
#include "p2psip/protocol/writer.hpp"

namespace p2psip::protocol::detail {

/// DataValue: `Boolean exists; opaque value<0..2^32-1>`.
data_value decode_data_value(reader& r);
void encode_data_value(writer& w, const data_value& v);

/// StoredDataValue in data model `m` (the model is not on the wire).
stored_data_value decode_stored_data_value(reader& r, data_model m);
/// With `zero_index`, an array entry's index is written as 0: the form the data signature covers
/// (RFC 6940 section 7.4.2.2), so that an append (index 0xFFFFFFFF) still verifies once stored.
void encode_stored_data_value(writer& w, const stored_data_value& v, bool zero_index = false);

/// StoredData: `uint32 length` (computed on encode; on decode it must equal the bytes the
/// structure took), storage_time, lifetime, StoredDataValue in model `m`, Signature. The peer's
/// store keeps values in this wire form too.
stored_data decode_stored_data(reader& r, data_model m);
void encode_stored_data(writer& w, const stored_data& sd);

}  // namespace p2psip::protocol::detail
