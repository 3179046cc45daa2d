package io.hintgrpo.engine.model;

import io.hintgrpo.engine.Buf;

/**
 * What training updates ({@link Model#trainable}): parameters and their gradients in one layout.
 * The {@link Model} itself (every parameter), or, with LoRA attached, its {@link Lora} adapter
 * (the base frozen). {@link AdamW} sizes its moments to it and names them by its layout.
 */
public interface Trainable {
    ParamLayout layout();

    Buf params();

    /** The gradients, same layout as params. */
    Buf grads();

    /** After an optimizer wrote params (a bf16 model recasts its weight copy). */
    void paramsChanged();
}
