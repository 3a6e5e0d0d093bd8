package protocols

import "fmt"

// Intents is the IDENTIFY intents bitfield: which events the gateway sends.
type Intents uint64

// Gateway intents. The privileged ones (GUILD_MEMBERS, GUILD_PRESENCES,
// MESSAGE_CONTENT) must be enabled for the application, or the gateway
// closes with 4014.
const (
	IntentGuilds                      Intents = 1 << 0
	IntentGuildMembers                Intents = 1 << 1
	IntentGuildModeration             Intents = 1 << 2
	IntentGuildExpressions            Intents = 1 << 3
	IntentGuildIntegrations           Intents = 1 << 4
	IntentGuildWebhooks               Intents = 1 << 5
	IntentGuildInvites                Intents = 1 << 6
	IntentGuildVoiceStates            Intents = 1 << 7
	IntentGuildPresences              Intents = 1 << 8
	IntentGuildMessages               Intents = 1 << 9
	IntentGuildMessageReactions       Intents = 1 << 10
	IntentGuildMessageTyping          Intents = 1 << 11
	IntentDirectMessages              Intents = 1 << 12
	IntentDirectMessageReactions      Intents = 1 << 13
	IntentDirectMessageTyping         Intents = 1 << 14
	IntentMessageContent              Intents = 1 << 15
	IntentGuildScheduledEvents        Intents = 1 << 16
	IntentAutoModerationConfiguration Intents = 1 << 20
	IntentAutoModerationExecution     Intents = 1 << 21
	IntentGuildMessagePolls           Intents = 1 << 24
	IntentDirectMessagePolls          Intents = 1 << 25
)

// AllIntents is every defined intent; PrivilegedIntents the privileged ones.
const (
	AllIntents = IntentGuilds | IntentGuildMembers | IntentGuildModeration | IntentGuildExpressions |
		IntentGuildIntegrations | IntentGuildWebhooks | IntentGuildInvites | IntentGuildVoiceStates |
		IntentGuildPresences | IntentGuildMessages | IntentGuildMessageReactions |
		IntentGuildMessageTyping | IntentDirectMessages | IntentDirectMessageReactions |
		IntentDirectMessageTyping | IntentMessageContent | IntentGuildScheduledEvents |
		IntentAutoModerationConfiguration | IntentAutoModerationExecution |
		IntentGuildMessagePolls | IntentDirectMessagePolls
	PrivilegedIntents = IntentGuildMembers | IntentGuildPresences | IntentMessageContent
)

// Validate returns an error wrapping [ErrInvalidIntents] when i has bits
// Discord does not define (the gateway would close with 4013).
func (i Intents) Validate() error {
	if extra := i &^ AllIntents; extra != 0 {
		return fmt.Errorf("%w: undefined bits %#x", ErrInvalidIntents, uint64(extra))
	}
	return nil
}
