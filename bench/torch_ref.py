"""The PyTorch reference of l2compress on the GPU, timed with CUDA events (median).

Per layer the reference does: torch.norm(keys, dim=-1) in the cache dtype, argsort ascending,
gather keys and values with the sorted indices, and slice the first k. Usage:
  python3 bench/torch_ref.py '[[1,8,4096,128,0.5], ...]'  ->  JSON {"B,H,S,D,r": ms}
"""
import json
import math
import sys

import torch


def l2_compress_layer(keys, values, keep_ratio):
    k = math.ceil(keep_ratio * keys.size(2))
    norms = torch.norm(keys, p=2, dim=-1)
    idx = norms.argsort(dim=-1)
    idx = idx.unsqueeze(-1).expand(-1, -1, -1, keys.shape[-1])
    return torch.gather(keys, 2, idx)[:, :, :k, :], torch.gather(values, 2, idx)[:, :, :k, :]


def main():
    shapes = json.loads(sys.argv[1])
    out = {}
    for b, h, s, d, r in shapes:
        sets = 4
        ks = [torch.randn(b, h, s, d, device="cuda", dtype=torch.float16) for _ in range(sets)]
        vs = [torch.randn(b, h, s, d, device="cuda", dtype=torch.float16) for _ in range(sets)]
        for i in range(3):
            l2_compress_layer(ks[i % sets], vs[i % sets], r)
        times = []
        for i in range(15):
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            l2_compress_layer(ks[i % sets], vs[i % sets], r)
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop))
        times.sort()
        out[f"{b},{h},{s},{d},{r}"] = times[len(times) // 2]
        del ks, vs
        torch.cuda.empty_cache()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
