// Package interop runs real clients of other Go Discord libraries,
// github.com/bwmarrin/discordgo v0.29.0 and github.com/disgoorg/disgo
// v0.18.15, against cordkit's mock Discord
// (github.com/cordkit/cordkit/conformance/mockdiscord) on 127.0.0.1.
//
// It is a separate module so that the main module never depends on those
// libraries. The package holds only tests; see README.md for what they
// prove and how to run them.
package interop
