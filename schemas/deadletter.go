package schemas

// Headers a sink adds to a dead-letter record (TopicDeadLetter) besides
// HeaderReason and HeaderSourceTopic, so that an operator can find the
// original record even when the dead letter carries no value.
const (
	HeaderSourcePartition = "source-partition"
	HeaderSourceOffset    = "source-offset"
)
