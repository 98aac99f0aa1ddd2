// ctxmem-go: a command-line client of the ctxmem services in Go, built from proto/ctxmem/v1
// with Debian's protoc-gen-go and protoc-gen-go-grpc (clients/go/build.sh). Verbs:
//
//	ctxmem-go [global flags] compress [flags] FILE   prints the memory id (progress on stderr)
//	ctxmem-go [global flags] ask [flags] ID[,ID...] QUESTION   streams the answer ("-" = no memory)
//	ctxmem-go [global flags] stat ID                 prints the MemoryInfo as JSON
//
// Global flags: -compressor, -decoder (or $CTXMEM_COMPRESSOR, $CTXMEM_DECODER), -token (or
// $CTXMEM_TOKEN; sent as "authorization: Bearer <token>"), -timeout. Exit codes: 0 ok, 1 the
// service refused (stderr: "ctxmem-go: VERB: CODE: message"), 2 usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	pb "ctxmem/gen/ctxmemv1"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const pieceBytes = 64 << 10 // text sent per CompressRequest

type globals struct {
	compressor, decoder, token string
	timeout                    time.Duration
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func usage() {
	fmt.Fprintf(os.Stderr, `usage: ctxmem-go [global flags] VERB [flags] ARGS
verbs:
  compress [flags] FILE               compress a UTF-8 text file; prints the memory id
  ask [flags] ID[,ID...]|- QUESTION   ask a question on memories; streams the answer
  stat ID                             describe a memory (JSON)
global flags:
`)
	flag.PrintDefaults()
}

// ctx carries the deadline and the bearer token of every call.
func (g *globals) ctx() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	if g.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+g.token)
	}
	return ctx, cancel
}

func dial(addr string) (*grpc.ClientConn, error) {
	return grpc.Dial(addr, grpc.WithInsecure())
}

func compress(g *globals, args []string) error {
	fs := flag.NewFlagSet("compress", flag.ExitOnError)
	pruner := fs.String("pruner", "", "pruner name (server default when empty)")
	memoryType := fs.String("memory-type", "", "FM, IM or IMDC")
	chunkSize := fs.Int64("chunk-size", 0, "tokens per chunk (0 = server default)")
	memorySize := fs.Int64("memory-size", -1, "entries per kv head kept (-1 = server default)")
	label := fs.String("label", "", "client label stored with the memory")
	quiet := fs.Bool("q", false, "no progress on stderr")
	fs.Parse(args)
	if fs.NArg() != 1 {
		return usageError("compress FILE")
	}
	text, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	config := &pb.CompressionConfig{Pruner: *pruner, MemoryType: *memoryType, ChunkSize: *chunkSize}
	if *memorySize >= 0 {
		config.MemorySize = proto.Int64(*memorySize)
	}
	conn, err := dial(g.compressor)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := g.ctx()
	defer cancel()
	stream, err := pb.NewCompressorClient(conn).Compress(ctx)
	if err != nil {
		return err
	}
	start := &pb.CompressRequest{Msg: &pb.CompressRequest_Start{Start: &pb.CompressStart{
		Config: config, ClientLabel: *label}}}
	if err := stream.Send(start); err != nil {
		return finishSend(stream, err)
	}
	for off := 0; off < len(text); off += pieceBytes {
		end := off + pieceBytes
		if end > len(text) {
			end = len(text)
		}
		piece := &pb.CompressRequest{Msg: &pb.CompressRequest_Text{Text: text[off:end]}}
		if err := stream.Send(piece); err != nil {
			return finishSend(stream, err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	for {
		event, err := stream.Recv()
		if err != nil {
			if err == io.EOF {
				return errors.New("the stream ended without a result")
			}
			return err
		}
		switch e := event.Event.(type) {
		case *pb.CompressEvent_Progress:
			if !*quiet {
				fmt.Fprintf(os.Stderr, "compress: %d/%d tokens, %d chunks, memory %d\n",
					e.Progress.TokensRead, e.Progress.TokensTotal, e.Progress.ChunksDone,
					e.Progress.MemoryLen)
			}
		case *pb.CompressEvent_Done:
			m := e.Done.Memory
			if !*quiet {
				fmt.Fprintf(os.Stderr, "compress: %d tokens -> ratio %.2f, %d bytes, existed=%v\n",
					m.NOriginalTokens, m.CompressionRatio, m.BlobBytes, e.Done.Existed)
			}
			fmt.Println(m.MemoryId)
			return nil
		}
	}
}

// A failed Send means the server ended the call: its status comes from Recv.
func finishSend(stream pb.Compressor_CompressClient, sendErr error) error {
	for {
		if _, err := stream.Recv(); err != nil {
			if err == io.EOF {
				return sendErr
			}
			return err
		}
	}
}

func ask(g *globals, args []string) error {
	fs := flag.NewFlagSet("ask", flag.ExitOnError)
	maxTokens := fs.Int("max-tokens", 0, "tokens to generate at most (0 = server default)")
	temperature := fs.Float64("temperature", 0, "0 = greedy")
	raw := fs.Bool("raw", false, "send QUESTION as a raw prompt instead of a chat message")
	system := fs.String("system", "", "system message (chat only)")
	fs.Parse(args)
	if fs.NArg() != 2 {
		return usageError("ask ID[,ID...]|- QUESTION")
	}
	req := &pb.GenerateRequest{MaxTokens: int32(*maxTokens),
		Sampling: &pb.SamplingParams{Temperature: float32(*temperature)}}
	if ids := fs.Arg(0); ids != "-" {
		req.MemoryIds = strings.Split(ids, ",")
	}
	if *raw {
		req.Input = &pb.GenerateRequest_Prompt{Prompt: fs.Arg(1)}
	} else {
		chat := &pb.ChatMessages{}
		if *system != "" {
			chat.Messages = append(chat.Messages, &pb.ChatMessage{Role: "system", Content: *system})
		}
		chat.Messages = append(chat.Messages, &pb.ChatMessage{Role: "user", Content: fs.Arg(1)})
		req.Input = &pb.GenerateRequest_Chat{Chat: chat}
	}
	conn, err := dial(g.decoder)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := g.ctx()
	defer cancel()
	stream, err := pb.NewDecoderClient(conn).Generate(ctx, req)
	if err != nil {
		return err
	}
	for {
		event, err := stream.Recv()
		if err != nil {
			if err == io.EOF {
				return errors.New("the stream ended without a result")
			}
			return err
		}
		switch e := event.Event.(type) {
		case *pb.GenerateEvent_Delta:
			os.Stdout.WriteString(e.Delta.Text)
		case *pb.GenerateEvent_Done:
			fmt.Println()
			u, t := e.Done.Usage, e.Done.Timings
			fmt.Fprintf(os.Stderr, "ask: stop=%s prompt_tokens=%d memory_entries=%d generated=%d "+
				"ttft=%.3fs total=%.3fs cache_hit=%v request_id=%s\n", e.Done.StopReason,
				u.PromptTokens, u.MemoryEntries, u.GeneratedTokens, t.TtftSeconds, t.TotalSeconds,
				t.CacheHit, e.Done.RequestId)
			return nil
		}
	}
}

func stat(g *globals, args []string) error {
	if len(args) != 1 {
		return usageError("stat ID")
	}
	conn, err := dial(g.compressor)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := g.ctx()
	defer cancel()
	info, err := pb.NewCompressorClient(conn).StatMemory(ctx, &pb.StatMemoryRequest{MemoryId: args[0]})
	if err != nil {
		return err
	}
	out, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(info)
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

type usageError string

func (u usageError) Error() string { return "usage: ctxmem-go " + string(u) }

func main() {
	g := &globals{}
	flag.StringVar(&g.compressor, "compressor", envOr("CTXMEM_COMPRESSOR", "127.0.0.1:50051"),
		"compressor address")
	flag.StringVar(&g.decoder, "decoder", envOr("CTXMEM_DECODER", "127.0.0.1:50052"),
		"decoder address")
	flag.StringVar(&g.token, "token", os.Getenv("CTXMEM_TOKEN"), "bearer token")
	flag.DurationVar(&g.timeout, "timeout", 10*time.Minute, "deadline of each call")
	flag.Usage = usage
	flag.Parse()
	if flag.NArg() < 1 {
		usage()
		os.Exit(2)
	}
	verbs := map[string]func(*globals, []string) error{"compress": compress, "ask": ask, "stat": stat}
	verb := flag.Arg(0)
	run, ok := verbs[verb]
	if !ok {
		fmt.Fprintf(os.Stderr, "ctxmem-go: unknown verb %q\n", verb)
		usage()
		os.Exit(2)
	}
	if err := run(g, flag.Args()[1:]); err != nil {
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if s, ok := status.FromError(err); ok && s.Code() != 0 {
			fmt.Fprintf(os.Stderr, "ctxmem-go: %s: %s: %s\n", verb, strings.ToUpper(
				strings.ReplaceAll(toSnake(s.Code().String()), " ", "_")), s.Message())
		} else {
			fmt.Fprintf(os.Stderr, "ctxmem-go: %s: %v\n", verb, err)
		}
		os.Exit(1)
	}
}

// "NotFound" -> "not_found" (gRPC's Go names are CamelCase; the other clients print NOT_FOUND).
func toSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return b.String()
}
