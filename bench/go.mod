module github.com/cordkit/cordkit/bench

go 1.26.0

replace github.com/cordkit/cordkit => ../

require (
	github.com/bwmarrin/discordgo v0.29.0
	github.com/cordkit/cordkit v0.0.0-00010101000000-000000000000
	github.com/disgoorg/disgo v0.18.15
	github.com/disgoorg/snowflake/v2 v2.0.3
	github.com/gobwas/ws v1.5.0
	github.com/klauspost/compress v1.20.3
)

require (
	github.com/bytedance/gopkg v0.1.3 // indirect
	github.com/bytedance/sonic v1.15.5 // indirect
	github.com/bytedance/sonic/loader v0.5.3 // indirect
	github.com/cloudwego/base64x v0.1.6 // indirect
	github.com/disgoorg/json v1.2.0 // indirect
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/gorilla/websocket v1.5.3 // indirect
	github.com/klauspost/cpuid/v2 v2.4.0 // indirect
	github.com/sasha-s/go-csync v0.0.0-20240107134140-fcbab37b09ad // indirect
	github.com/twitchyliquid64/golang-asm v0.15.1 // indirect
	golang.org/x/arch v0.0.0-20210923205945-b76863e36670 // indirect
	golang.org/x/crypto v0.31.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
