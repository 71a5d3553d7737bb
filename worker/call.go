package worker

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
)

// callHandler runs h, turning a panic into an internal error logged with the
// method. Safe from any goroutine.
func callHandler(ctx context.Context, log *zap.Logger, h rpc.Handler, method, params []byte, rep *rpc.Reply) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("handler panicked", zap.String("method", string(method)),
				zap.String("panic", fmt.Sprint(p)), zap.StackSkip("stack", 1))
			err = protocol.Errorf(protocol.CodeInternal, "method %q panicked", method)
		}
	}()
	return h(ctx, params, rep)
}
