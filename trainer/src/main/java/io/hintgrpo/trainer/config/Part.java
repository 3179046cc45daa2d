package io.hintgrpo.trainer.config;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * A named part of a settings record (a record of settings inside it, e.g. the optimizer part
 * shared by SFT and GRPO). Its settings stay flat keys of the owner; {@link #defaults} lets an
 * owner give some of them defaults of its own ("lr=2e-3").
 */
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.RECORD_COMPONENT)
public @interface Part {
    /** "key=value" defaults that replace the part's own in this owner. */
    String[] defaults() default {};
}
