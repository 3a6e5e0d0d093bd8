package mockdiscord

import "fmt"

// DispatchTrustedToShard is [Server.DispatchToShard] for data the caller
// has already checked is valid JSON, such as a benchmark replaying
// pre-generated events: it skips the json.Valid that DispatchToShard runs
// on every call, whose cost would otherwise be counted in the throughput
// of the client under test. Data that is not valid JSON is sent as is.
// The error wraps ErrInvalidDispatch for a negative shard or an empty
// name.
func (s *Server) DispatchTrustedToShard(shard int, name string, data []byte) (int, error) {
	if shard < 0 {
		return 0, fmt.Errorf("%w: shard %d", ErrInvalidDispatch, shard)
	}
	if _, err := marshalDispatch(name, nil); err != nil {
		return 0, err
	}
	return s.toShard(shard, name, 1, func(int) []byte { return data }), nil
}
